//! JSON as coloured, indented lines: keys, strings, numbers and literals each styled. Only
//! the lines asked for are built and long values are cut, so 10 MB of storage draws as fast
//! as 10 bytes.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use serde_json::Value;

use super::theme::Theme;

/// Maximum characters of a scalar shown; a longer one ends with its full size.
const MAX_SCALAR_CHARS: usize = 500;

/// Appends up to `limit` lines of `value` as pretty JSON, one line per scalar.
pub fn lines(value: &Value, limit: usize, theme: &Theme, out: &mut Vec<Line<'static>>) {
    let mut writer = Writer { theme, out, limit };
    writer.push(value, 0, None, false);
}

struct Writer<'a> {
    theme: &'a Theme,
    out: &'a mut Vec<Line<'static>>,
    limit: usize,
}

impl Writer<'_> {
    fn full(&self) -> bool {
        self.out.len() >= self.limit
    }

    fn prefix(&self, indent: usize, key: Option<&str>) -> Vec<Span<'static>> {
        let mut spans = vec![Span::raw("  ".repeat(indent))];
        if let Some(key) = key {
            spans.push(Span::styled(
                serde_json::to_string(key).unwrap_or_default(),
                self.theme.json_key(),
            ));
            spans.push(Span::raw(": "));
        }
        spans
    }

    fn push(&mut self, value: &Value, indent: usize, key: Option<&str>, comma: bool) {
        if self.full() {
            return;
        }
        let tail = if comma { "," } else { "" };
        let mut spans = self.prefix(indent, key);
        match value {
            Value::Object(map) if !map.is_empty() => {
                spans.push(Span::raw("{"));
                self.out.push(Line::from(spans));
                let last = map.len() - 1;
                for (i, (k, v)) in map.iter().enumerate() {
                    self.push(v, indent + 1, Some(k), i < last);
                }
                if !self.full() {
                    self.out
                        .push(Line::raw(format!("{}}}{tail}", "  ".repeat(indent))));
                }
            }
            Value::Array(items) if !items.is_empty() => {
                spans.push(Span::raw("["));
                self.out.push(Line::from(spans));
                let last = items.len() - 1;
                for (i, v) in items.iter().enumerate() {
                    self.push(v, indent + 1, None, i < last);
                }
                if !self.full() {
                    self.out
                        .push(Line::raw(format!("{}]{tail}", "  ".repeat(indent))));
                }
            }
            scalar => {
                let style: Style = match scalar {
                    Value::String(_) => self.theme.json_string(),
                    Value::Number(_) => self.theme.json_number(),
                    Value::Bool(_) | Value::Null => self.theme.json_literal(),
                    _ => Style::default(),
                };
                spans.push(Span::styled(shorten(scalar), style));
                spans.push(Span::raw(tail.to_owned()));
                self.out.push(Line::from(spans));
            }
        }
    }
}

fn shorten(scalar: &Value) -> String {
    if let Value::String(text) = scalar
        && text.len() > MAX_SCALAR_CHARS
    {
        let head: String = text.chars().take(MAX_SCALAR_CHARS).collect();
        return format!(
            "{}… ({} bytes)",
            serde_json::to_string(&head)
                .unwrap_or_default()
                .trim_end_matches('"'),
            text.len()
        );
    }
    scalar.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stops_at_limit_and_cuts_long_strings() {
        let theme = Theme { color: false };
        let value = json!({ "a": [1, 2, 3], "blob": "x".repeat(10_000) });
        let mut out = Vec::new();
        lines(&value, 3, &theme, &mut out);
        assert_eq!(out.len(), 3);
        let mut out = Vec::new();
        lines(&value, 100, &theme, &mut out);
        let text: Vec<String> = out.iter().map(|l| l.to_string()).collect();
        assert_eq!(text[0], "{");
        assert!(text[6].contains("… (10000 bytes)"), "{text:?}");
        assert!(text[6].len() < 600);
        assert_eq!(text.last().unwrap(), "}");
    }
}
