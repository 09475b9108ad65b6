//! The help overlay: every key and what it does.

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::theme::Theme;

/// Keys and what they do; `true` marks the ones `--read-only` turns off.
const KEYS: &[(&str, &str, bool)] = &[
    (
        "↑ ↓  j k",
        "select an object, or scroll the detail pane",
        false,
    ),
    ("PgUp PgDn", "move a page", false),
    ("Home End  g G", "first or last object", false),
    (
        "Tab",
        "move focus between the table and the detail pane",
        false,
    ),
    (
        "1 2 3 4  ← →",
        "detail page: storage, info, calls, log",
        false,
    ),
    ("/", "filter by class/id text and status:NAME,NAME", false),
    ("s  S", "sort by the next column, reverse the order", false),
    ("c", "call a method on the selected object", true),
    ("n", "create an object (pick a class, type an id)", true),
    (
        "h",
        "hibernate the selected object after its running call",
        true,
    ),
    (
        "H",
        "hibernate now, aborting the running call (asks first)",
        true,
    ),
    ("w", "wake the selected object", true),
    ("d", "delete the selected object (asks first)", true),
    ("i", "change the selected object's idle timeout", true),
    ("a", "set the selected object's alarm: in and every", true),
    ("A", "clear the selected object's alarm (asks first)", true),
    (
        "mouse",
        "click a row to select, a title to sort; wheel scrolls",
        false,
    ),
    ("?  Esc", "show or hide this help", false),
    (
        "q  Ctrl-C",
        "quit (an embedded runtime hibernates its objects first)",
        false,
    ),
];

pub fn draw(frame: &mut Frame, read_only: bool, theme: &Theme) {
    let area = super::centered(frame.area(), 78, KEYS.len() as u16 + 4);
    frame.render_widget(Clear, area);
    let mut lines = vec![Line::raw("")];
    for (key, what, action) in KEYS {
        let what = if read_only && *action {
            format!("{what} (off: read-only)")
        } else {
            (*what).to_owned()
        };
        let style = if read_only && *action {
            theme.dim()
        } else {
            Default::default()
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {key:>15} "), theme.header()),
            Span::styled(format!(" {what}"), style),
        ]));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" keys ")
        .title_bottom(" ? or Esc to close ");
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
