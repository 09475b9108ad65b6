//! The client's alarm requests: set, clear and list.

use std::sync::atomic::Ordering;

use reqwest::Method;

use super::{Client, ClientError};
use crate::api::types::{AlarmBody, AlarmPage};
use crate::model::alarm::PendingAlarm;
use crate::model::{ObjectKey, ObjectRecord};

impl Client {
    /// Sets or replaces the object's alarm.
    pub async fn set_alarm(
        &self,
        key: &ObjectKey,
        alarm: &AlarmBody,
    ) -> Result<ObjectRecord, ClientError> {
        let url = self.object_url(key, &["alarm"]);
        let request = self.http.put(url.clone()).json(alarm);
        let response = self.send(request, &url).await?;
        response.json().await.map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    pub async fn clear_alarm(&self, key: &ObjectKey) -> Result<(), ClientError> {
        let url = self.object_url(key, &["alarm"]);
        self.send(self.http.delete(url.clone()), &url)
            .await
            .map(|_| ())
    }

    /// Fetches one page of pending alarms, soonest first; `after` is the previous page's
    /// `next`.
    pub async fn alarms(
        &self,
        class: Option<&str>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<AlarmPage, ClientError> {
        let mut url = self.url(&["alarms"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.to_string());
            if let Some(class) = class {
                query.append_pair("class", class);
            }
            if let Some(after) = after {
                query.append_pair("after", after);
            }
        }
        self.json(Method::GET, url).await
    }

    /// Lists every pending alarm of `class` (all when `None`), soonest first, page by page
    /// with the server's maximum page size.
    pub async fn list_all_alarms(
        &self,
        class: Option<&str>,
    ) -> Result<Vec<PendingAlarm>, ClientError> {
        let size = self
            .server_page_size()
            .await?
            .min(self.page_size.load(Ordering::Relaxed));
        let mut alarms = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.alarms(class, size, after.as_deref()).await?;
            alarms.extend(page.alarms);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(alarms),
            }
        }
    }
}
