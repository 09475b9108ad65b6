//! The table's rows and their order: a filter and a sort over the full list,
//! kept as indices so the table draws only the rows on screen, however many objects exist.

use std::cmp::Ordering;

use crate::model::{ObjectRecord, Status};

/// A column the table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Class,
    Id,
    Status,
    HibernatesIn,
    Calls,
    AlarmIn,
    Errors,
    LastCall,
    Storage,
}

impl SortColumn {
    pub const ALL: [SortColumn; 9] = [
        SortColumn::Class,
        SortColumn::Id,
        SortColumn::Status,
        SortColumn::HibernatesIn,
        SortColumn::Calls,
        SortColumn::AlarmIn,
        SortColumn::Errors,
        SortColumn::LastCall,
        SortColumn::Storage,
    ];

    pub fn title(self) -> &'static str {
        match self {
            SortColumn::Class => "CLASS",
            SortColumn::Id => "ID",
            SortColumn::Status => "STATUS",
            SortColumn::HibernatesIn => "HIBERNATES IN",
            SortColumn::Calls => "CALLS",
            SortColumn::AlarmIn => "ALARM IN",
            SortColumn::Errors => "ERRORS",
            SortColumn::LastCall => "LAST CALL",
            SortColumn::Storage => "STORAGE",
        }
    }

    /// Returns the column after this one, wrapping around.
    pub fn next(self) -> SortColumn {
        let at = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(at + 1) % Self::ALL.len()]
    }

    /// Compares by this column alone; ties are left to the caller.
    fn compare(self, a: &ObjectRecord, b: &ObjectRecord) -> Ordering {
        match self {
            SortColumn::Class => Ordering::Equal,
            SortColumn::Id => a.id.cmp(&b.id),
            SortColumn::Status => a.status.cmp(&b.status),
            SortColumn::HibernatesIn => soonest_first(a.hibernate_at, b.hibernate_at),
            SortColumn::Calls => a.calls.cmp(&b.calls),
            SortColumn::AlarmIn => {
                let next = |o: &ObjectRecord| o.alarm.as_ref().map(|a| a.next_attempt_at);
                soonest_first(next(a), next(b))
            }
            SortColumn::Errors => a.errors.cmp(&b.errors),
            SortColumn::LastCall => a.last_call_at.cmp(&b.last_call_at),
            SortColumn::Storage => a.storage_bytes.cmp(&b.storage_bytes),
        }
    }
}

/// Orders times soonest first, with objects that have none after those that do.
fn soonest_first<T: Ord>(a: Option<T>, b: Option<T>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The table's order: a column and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: SortColumn,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            column: SortColumn::Class,
            descending: false,
        }
    }
}

/// A row filter: a case-insensitive substring of `class/id`, and any of a set of
/// statuses. Written as text, e.g. `alice status:active,failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    pub statuses: Vec<Status>,
}

impl Filter {
    /// Parses filter text; the error names the status that is not one.
    pub fn parse(input: &str) -> Result<Filter, String> {
        let mut words = Vec::new();
        let mut statuses = Vec::new();
        for word in input.split_whitespace() {
            match word.strip_prefix("status:") {
                Some(list) => {
                    for name in list.split(',').filter(|n| !n.is_empty()) {
                        statuses.push(name.parse::<Status>().map_err(|e| e.to_string())?);
                    }
                }
                None => words.push(word.to_lowercase()),
            }
        }
        Ok(Filter {
            text: words.join(" "),
            statuses,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.statuses.is_empty()
    }

    pub fn matches(&self, object: &ObjectRecord) -> bool {
        if !self.statuses.is_empty() && !self.statuses.contains(&object.status) {
            return false;
        }
        if self.text.is_empty() {
            return true;
        }
        let key = format!("{}/{}", object.class, object.id).to_lowercase();
        key.contains(&self.text)
    }
}

/// Computes the rows to show: indices into `objects` (which is in class/id order).
pub fn rows(objects: &[ObjectRecord], filter: &Filter, sort: Sort) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..objects.len())
        .filter(|&i| filter.matches(&objects[i]))
        .collect();
    if sort.column != SortColumn::Class {
        // `objects` is in class/id order, so breaking ties by index orders them by key
        // without comparing strings.
        rows.sort_unstable_by(|&a, &b| {
            sort.column
                .compare(&objects[a], &objects[b])
                .then(a.cmp(&b))
        });
    }
    if sort.descending {
        rows.reverse();
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_parses_text_and_statuses() {
        let filter = Filter::parse("Ali status:active,failed").unwrap();
        assert_eq!(filter.text, "ali");
        assert_eq!(filter.statuses, [Status::Active, Status::Failed]);
        let err = Filter::parse("status:asleep").unwrap_err();
        assert!(err.contains("\"asleep\""), "{err}");
        assert!(Filter::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn sort_cycles_through_every_column() {
        let mut column = SortColumn::Class;
        for _ in 0..SortColumn::ALL.len() {
            column = column.next();
        }
        assert_eq!(column, SortColumn::Class);
    }
}
