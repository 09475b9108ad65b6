//! Deadlines: one background task keeps every object's next deadline in a timer wheel
//! (`tokio_util::time::DelayQueue`) and reports each key when its deadline passes.
//!
//! Setting a key's deadline replaces the previous one, so each object has at most one. The
//! task sleeps until the earliest deadline; no periodic scan runs.

use std::collections::HashMap;
use std::hash::Hash;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::time::{DelayQueue, delay_queue};

enum Command<K> {
    Set(K, Instant),
    Clear(K),
}

/// The handle for setting and clearing deadlines; cheap to clone.
pub struct Deadlines<K> {
    commands: mpsc::UnboundedSender<Command<K>>,
}

impl<K> Clone for Deadlines<K> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
        }
    }
}

impl<K: Clone + Eq + Hash + Send + 'static> Deadlines<K> {
    /// Starts the scheduler task; keys whose deadline passed arrive on the returned receiver.
    /// The task ends when every handle is dropped.
    pub fn start() -> (Self, mpsc::UnboundedReceiver<K>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let (fired_sender, fired) = mpsc::unbounded_channel();
        tokio::spawn(run(receiver, fired_sender));
        (Self { commands }, fired)
    }

    pub fn set(&self, key: K, at: Instant) {
        let _ = self.commands.send(Command::Set(key, at));
    }

    pub fn clear(&self, key: K) {
        let _ = self.commands.send(Command::Clear(key));
    }
}

async fn run<K: Clone + Eq + Hash>(
    mut commands: mpsc::UnboundedReceiver<Command<K>>,
    fired: mpsc::UnboundedSender<K>,
) {
    let mut queue: DelayQueue<K> = DelayQueue::new();
    let mut entries: HashMap<K, delay_queue::Key> = HashMap::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Set(key, at)) => match entries.get(&key) {
                    Some(entry) => queue.reset_at(entry, at),
                    None => {
                        let entry = queue.insert_at(key.clone(), at);
                        entries.insert(key, entry);
                    }
                },
                Some(Command::Clear(key)) => {
                    if let Some(entry) = entries.remove(&key) {
                        queue.remove(&entry);
                    }
                }
                None => return,
            },
            Some(expired) = queue.next(), if !queue.is_empty() => {
                let key = expired.into_inner();
                entries.remove(&key);
                if fired.send(key).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_in_deadline_order_and_honours_reset() {
        let (deadlines, mut fired) = Deadlines::start();
        let now = Instant::now();
        deadlines.set("b", now + Duration::from_secs(2));
        deadlines.set("a", now + Duration::from_secs(1));
        deadlines.set("c", now + Duration::from_secs(3));
        deadlines.set("a", now + Duration::from_secs(5));
        deadlines.clear("c");
        assert_eq!(fired.recv().await, Some("b"));
        assert_eq!(fired.recv().await, Some("a"));
        assert!(Instant::now() >= now + Duration::from_secs(5));
        deadlines.set("d", Instant::now());
        assert_eq!(fired.recv().await, Some("d"));
    }
}
