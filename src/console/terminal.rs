//! Entering and leaving the console's terminal mode: raw mode, the alternate screen and mouse
//! capture, undone on every way out, including a panic.

use std::io::{IsTerminal, stdout};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::DefaultTerminal;

/// Fails unless standard input and output are a terminal, which the console draws on and
/// reads keys from.
pub fn require() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() || !stdout().is_terminal() {
        anyhow::bail!(
            "the console needs a terminal, and standard input or output is not one; run it in a \
             terminal, or use the client subcommands (torpor ls, show, call) from scripts"
        );
    }
    Ok(())
}

/// Switches the terminal to the console's mode and installs a panic hook that switches it
/// back before the panic message is printed.
pub fn enter() -> std::io::Result<DefaultTerminal> {
    let terminal = ratatui::try_init()?;
    execute!(stdout(), EnableMouseCapture)?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave();
        previous(info);
    }));
    Ok(terminal)
}

/// Restores the terminal; safe to call more than once.
pub fn leave() {
    let _ = execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
}
