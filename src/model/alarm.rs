//! Alarms: the one pending wake-up call an object may have, how a handler or an operator asks
//! for one, and the rules that move it after each delivery.
//!
//! A request gives the first time (`in_ms` from now, or an absolute time) and optionally a
//! period. Times are Unix milliseconds by the wall clock, because an alarm must survive
//! restarts. The runtime turns them into monotonic deadlines when it schedules them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::names::{ClassName, ObjectId};
use super::record::Status;

/// The method the runtime calls to deliver an alarm. Callers may not call it.
pub const ALARM_METHOD: &str = "alarm";
/// The response header with which a handler sets, replaces or clears its object's alarm.
pub const ALARM_HEADER: &str = "torpor-alarm";
/// The minimum period of a recurring alarm, in milliseconds.
pub const MIN_ALARM_PERIOD_MS: u64 = 100;
/// The maximum period of a recurring alarm: 365 days, in milliseconds.
pub const MAX_ALARM_PERIOD_MS: u64 = 365 * 86_400_000;
/// How far ahead an alarm may be set: 10 years of 365 days, in milliseconds.
pub const MAX_ALARM_AHEAD_MS: u64 = 10 * 365 * 86_400_000;

/// An object's pending alarm, as the store keeps it and the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// The time the pending delivery is scheduled for.
    pub at: DateTime<Utc>,
    /// The period of a recurring alarm, in milliseconds; absent for a one-shot alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// The number of the next delivery attempt of this scheduled time, from 1.
    pub attempt: u32,
    /// The time the next attempt is due: `at`, or a retry time after a failed attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// The error of the last failed attempt, kept until a delivery succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Alarm {
    /// Returns a new alarm scheduled for `at_ms`, with no attempt made yet.
    pub fn scheduled(at_ms: i64, every_ms: Option<u64>) -> Alarm {
        let at = timestamp(at_ms);
        Alarm {
            at,
            every_ms,
            attempt: 1,
            next_attempt_at: at,
            last_error: None,
        }
    }

    pub fn at_ms(&self) -> i64 {
        self.at.timestamp_millis()
    }

    pub fn next_attempt_ms(&self) -> i64 {
        self.next_attempt_at.timestamp_millis()
    }
}

/// A pending alarm with its object, as `GET /v1/alarms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAlarm {
    pub class: ClassName,
    pub id: ObjectId,
    pub status: Status,
    #[serde(flatten)]
    pub alarm: Alarm,
}

fn timestamp(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// When an alarm first fires, as requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmTime {
    /// Milliseconds from the moment the request is applied.
    In(u64),
    /// A Unix time in milliseconds; a time in the past fires at once.
    At(i64),
}

/// A request to set an object's alarm, validated when it is resolved against the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmRequest {
    pub time: AlarmTime,
    pub every_ms: Option<u64>,
}

/// The change a `torpor-alarm` header requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmHeader {
    Set(AlarmRequest),
    Clear,
}

/// Parses a duration such as `30s` or `1h 30m` into whole milliseconds, as alarm times are.
/// A part below a millisecond is rejected rather than rounded away.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration such as 30s or 5m: {e}"))?;
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!("{text:?} is not a whole number of milliseconds"));
    }
    u64::try_from(duration.as_millis()).map_err(|_| format!("{text:?} is too long"))
}

/// The rule every alarm request follows, quoted in rejections.
pub const ALARM_RULE: &str = "an alarm is `clear` or a JSON object with exactly one of \
    \"in_ms\" (milliseconds from now) or \"at_ms\" (Unix milliseconds), and optionally \
    \"every_ms\" (the period, 100 ms to 365 days); it may be at most 10 years ahead";

impl AlarmRequest {
    /// Parses a JSON object with `in_ms` or `at_ms` and an optional `every_ms`. With
    /// `text_times`, `at` may also be an RFC 3339 time (the API's body); a handler's header
    /// takes numbers only.
    pub fn from_json(value: &Value, text_times: bool) -> Result<AlarmRequest, String> {
        let Value::Object(fields) = value else {
            return Err(format!("{value} is not a JSON object"));
        };
        let allowed: &[&str] = if text_times {
            &["in_ms", "at_ms", "at", "every_ms"]
        } else {
            &["in_ms", "at_ms", "every_ms"]
        };
        if let Some(other) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "unknown field {other:?}; the fields are {}",
                allowed.join(", ")
            ));
        }
        let times: Vec<&str> = ["in_ms", "at_ms", "at"]
            .into_iter()
            .filter(|name| fields.contains_key(*name))
            .collect();
        let time = match times.as_slice() {
            ["in_ms"] => AlarmTime::In(whole_ms(fields, "in_ms")?),
            ["at_ms"] => AlarmTime::At(unix_ms(whole_ms(fields, "at_ms")?)?),
            ["at"] => AlarmTime::At(rfc3339_ms(&fields["at"])?),
            [] => return Err(format!("it has none of {}", time_fields(text_times))),
            _ => {
                return Err(format!(
                    "it has {}; give only one of {}",
                    times.join(" and "),
                    time_fields(text_times)
                ));
            }
        };
        let every_ms = match fields.get("every_ms") {
            None | Some(Value::Null) => None,
            Some(_) => Some(whole_ms(fields, "every_ms")?),
        };
        let request = AlarmRequest { time, every_ms };
        request.check_period()?;
        Ok(request)
    }

    fn check_period(&self) -> Result<(), String> {
        match self.every_ms {
            Some(every) if every < MIN_ALARM_PERIOD_MS => Err(format!(
                "every_ms {every} is below the minimum period of {MIN_ALARM_PERIOD_MS} ms"
            )),
            Some(every) if every > MAX_ALARM_PERIOD_MS => Err(format!(
                "every_ms {every} is above the maximum period of {MAX_ALARM_PERIOD_MS} ms \
                 (365 days)"
            )),
            _ => Ok(()),
        }
    }

    /// Turns the request into a pending alarm, with `now_ms` as the current time.
    pub fn resolve(&self, now_ms: i64) -> Result<Alarm, String> {
        self.check_period()?;
        let limit = now_ms.saturating_add(MAX_ALARM_AHEAD_MS as i64);
        let at_ms = match self.time {
            AlarmTime::In(ms) if ms > MAX_ALARM_AHEAD_MS => {
                return Err(format!(
                    "in_ms {ms} is more than 10 years ahead (at most {MAX_ALARM_AHEAD_MS})"
                ));
            }
            AlarmTime::In(ms) => now_ms.saturating_add(ms as i64),
            AlarmTime::At(at) if at > limit => {
                return Err(format!(
                    "the time {} is more than 10 years ahead",
                    crate::model::format_ms(at)
                ));
            }
            AlarmTime::At(at) => at,
        };
        Ok(Alarm::scheduled(at_ms, self.every_ms))
    }
}

fn time_fields(text_times: bool) -> &'static str {
    if text_times {
        "\"in_ms\", \"at_ms\" or \"at\""
    } else {
        "\"in_ms\" or \"at_ms\""
    }
}

/// Reads a whole number of milliseconds. JSON does not tell `1000` from `1e3` or `1000.0`,
/// so a whole value written with a fraction or an exponent is taken too, up to 2^53. Above
/// that, a double cannot represent every whole number.
fn whole_ms(fields: &Map<String, Value>, name: &str) -> Result<u64, String> {
    const EXACT: f64 = (1u64 << 53) as f64;
    let value = &fields[name];
    if let Some(ms) = value.as_u64() {
        return Ok(ms);
    }
    match value.as_f64() {
        Some(ms) if ms.fract() == 0.0 && (0.0..=EXACT).contains(&ms) => Ok(ms as u64),
        Some(_) => Err(format!(
            "{name} {value} is not a whole number of milliseconds from 0 to {}",
            u64::MAX
        )),
        None => Err(format!("{name} {value} is not a number of milliseconds")),
    }
}

fn unix_ms(ms: u64) -> Result<i64, String> {
    i64::try_from(ms)
        .ok()
        .filter(|ms| DateTime::from_timestamp_millis(*ms).is_some())
        .ok_or_else(|| format!("at_ms {ms} is not a time"))
}

fn rfc3339_ms(value: &Value) -> Result<i64, String> {
    let text = value.as_str().ok_or_else(|| {
        format!("at {value} is not an RFC 3339 time such as \"2030-01-02T03:04:05Z\"")
    })?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("at {text:?} is not an RFC 3339 time: {e}"))
}

impl AlarmHeader {
    /// Parses a header value and resolves it against `now_ms`: the alarm it sets, or `None`
    /// for `clear`.
    pub fn resolve(value: &[u8], now_ms: i64) -> Result<Option<Alarm>, String> {
        match AlarmHeader::parse(value)? {
            AlarmHeader::Clear => Ok(None),
            AlarmHeader::Set(request) => request.resolve(now_ms).map(Some),
        }
    }

    /// Parses a `torpor-alarm` header value: `clear`, or the JSON of [`AlarmRequest`].
    pub fn parse(value: &[u8]) -> Result<AlarmHeader, String> {
        let text = std::str::from_utf8(value)
            .map_err(|_| "it is not UTF-8".to_owned())?
            .trim();
        if text == "clear" {
            return Ok(AlarmHeader::Clear);
        }
        let json: Value =
            serde_json::from_str(text).map_err(|e| format!("it is not `clear` or JSON: {e}"))?;
        AlarmRequest::from_json(&json, false).map(AlarmHeader::Set)
    }
}

/// The retry schedule of failed deliveries: the first pause, the maximum pause, and the
/// attempts each scheduled time gets before it is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_ms: u64,
    pub max_ms: u64,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// Returns the pause after failed attempt number `attempt` (from 1): the first pause,
    /// doubled for each earlier failure, at most `max_ms`.
    pub fn pause_ms(&self, attempt: u32) -> u64 {
        let doublings = attempt.saturating_sub(1).min(32);
        self.first_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms)
    }
}

/// Returns the first tick of the schedule `at_ms + k * every_ms` (k ≥ 1) that is after
/// `now_ms`. Ticks missed while a delivery was late are skipped, so they coalesce into the
/// delivery that just happened.
pub fn next_tick(at_ms: i64, every_ms: u64, now_ms: i64) -> i64 {
    let every = every_ms.max(1) as i64;
    if now_ms < at_ms {
        return at_ms.saturating_add(every);
    }
    let passed = (now_ms - at_ms) / every + 1;
    at_ms.saturating_add(passed.saturating_mul(every))
}

/// The alarm after a failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// The alarm, to be tried again at its `next_attempt_at`.
    Retry(Alarm),
    /// The last attempt failed: a recurring alarm moves to its next tick.
    NextTick(Alarm),
    /// The last attempt of a one-shot alarm failed: it is removed.
    Dropped,
}

impl Alarm {
    /// Returns the alarm after a successful delivery at `now_ms`: a recurring one moves to its
    /// next tick, and a one-shot one is gone.
    pub fn after_success(&self, now_ms: i64) -> Option<Alarm> {
        let every = self.every_ms?;
        Some(Alarm::scheduled(
            next_tick(self.at_ms(), every, now_ms),
            Some(every),
        ))
    }

    /// Returns the alarm after attempt `self.attempt` failed at `now_ms` with `error`.
    pub fn after_failure(&self, error: &str, policy: &RetryPolicy, now_ms: i64) -> AfterFailure {
        if self.attempt < policy.max_attempts {
            let retry_at = now_ms.saturating_add(policy.pause_ms(self.attempt) as i64);
            return AfterFailure::Retry(Alarm {
                attempt: self.attempt + 1,
                next_attempt_at: timestamp(retry_at),
                last_error: Some(error.to_owned()),
                ..self.clone()
            });
        }
        match self.every_ms {
            Some(every) => {
                let mut next =
                    Alarm::scheduled(next_tick(self.at_ms(), every, now_ms), Some(every));
                next.last_error = Some(error.to_owned());
                AfterFailure::NextTick(next)
            }
            None => AfterFailure::Dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn header(text: &str) -> Result<AlarmHeader, String> {
        AlarmHeader::parse(text.as_bytes())
    }

    #[test]
    fn headers_accepted() {
        assert_eq!(header("clear"), Ok(AlarmHeader::Clear));
        assert_eq!(
            header(r#"{"in_ms": 5000}"#),
            Ok(AlarmHeader::Set(AlarmRequest {
                time: AlarmTime::In(5000),
                every_ms: None
            }))
        );
        assert_eq!(
            header(r#"{"at_ms": 1800000000000, "every_ms": 100}"#),
            Ok(AlarmHeader::Set(AlarmRequest {
                time: AlarmTime::At(NOW),
                every_ms: Some(100)
            }))
        );
    }

    #[test]
    fn headers_resolve_against_the_clock() {
        assert_eq!(AlarmHeader::resolve(b"clear", NOW), Ok(None));
        let alarm = AlarmHeader::resolve(br#"{"in_ms": 5000}"#, NOW)
            .unwrap()
            .unwrap();
        assert_eq!(alarm.at_ms(), NOW + 5000);
        let err = AlarmHeader::resolve(br#"{"in_ms": 999999999999999}"#, NOW).unwrap_err();
        assert!(err.contains("10 years"), "{err}");
    }

    #[test]
    fn headers_rejected_with_reason() {
        let cases = [
            ("soon", "not `clear` or JSON"),
            ("[1]", "not a JSON object"),
            (r#"{}"#, "none of"),
            (r#"{"in_ms": 1, "at_ms": 2}"#, "in_ms and at_ms"),
            (r#"{"in_ms": -1}"#, "in_ms -1 is not a whole number"),
            (r#"{"in_ms": 1.5}"#, "in_ms 1.5 is not a whole number"),
            (
                r#"{"in_ms": "5s"}"#,
                "in_ms \"5s\" is not a number of milliseconds",
            ),
            (r#"{"in_ms": 1e20}"#, "from 0 to 18446744073709551615"),
            (r#"{"in_ms": 1, "every_ms": 99}"#, "every_ms 99 is below"),
            (r#"{"in_ms": 1, "every": 1000}"#, "unknown field \"every\""),
            (r#"{"at": "2030-01-01T00:00:00Z"}"#, "unknown field \"at\""),
        ];
        for (text, expected) in cases {
            let err = header(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        assert!(AlarmHeader::parse(b"\xff").unwrap_err().contains("UTF-8"));
        for whole in [r#"{"in_ms": 1e3}"#, r#"{"in_ms": 1000.0}"#] {
            assert_eq!(
                header(whole),
                header(r#"{"in_ms": 1000}"#),
                "{whole} is a whole number"
            );
        }
    }

    #[test]
    fn api_bodies_take_rfc3339_times() {
        let request =
            AlarmRequest::from_json(&json!({"at": "2030-01-01T00:00:00Z"}), true).unwrap();
        assert_eq!(request.time, AlarmTime::At(1_893_456_000_000));
        let err = AlarmRequest::from_json(&json!({"at": "tomorrow"}), true).unwrap_err();
        assert!(
            err.contains("\"tomorrow\" is not an RFC 3339 time"),
            "{err}"
        );
    }

    #[test]
    fn resolving_checks_how_far_ahead() {
        let alarm = AlarmRequest {
            time: AlarmTime::In(5000),
            every_ms: Some(1000),
        }
        .resolve(NOW)
        .unwrap();
        assert_eq!(alarm.at_ms(), NOW + 5000);
        assert_eq!(alarm.next_attempt_ms(), NOW + 5000);
        assert_eq!(alarm.attempt, 1);
        let past = AlarmRequest {
            time: AlarmTime::At(NOW - 60_000),
            every_ms: None,
        };
        assert_eq!(past.resolve(NOW).unwrap().at_ms(), NOW - 60_000);
        let far = AlarmRequest {
            time: AlarmTime::In(MAX_ALARM_AHEAD_MS + 1),
            every_ms: None,
        };
        assert!(far.resolve(NOW).unwrap_err().contains("10 years"));
        let far = AlarmRequest {
            time: AlarmTime::At(NOW + MAX_ALARM_AHEAD_MS as i64 + 1),
            every_ms: None,
        };
        assert!(far.resolve(NOW).unwrap_err().contains("10 years"));
    }

    #[test]
    fn next_tick_skips_missed_ticks() {
        assert_eq!(next_tick(1000, 100, 1000), 1100);
        assert_eq!(next_tick(1000, 100, 1050), 1100);
        assert_eq!(next_tick(1000, 100, 1100), 1200);
        assert_eq!(
            next_tick(1000, 100, 2049),
            2100,
            "ten missed ticks coalesce"
        );
        assert_eq!(next_tick(1000, 100, 900), 1100);
    }

    #[test]
    fn failures_retry_with_doubling_pauses_then_give_up() {
        let policy = RetryPolicy {
            first_ms: 1000,
            max_ms: 3000,
            max_attempts: 4,
        };
        assert_eq!(policy.pause_ms(1), 1000);
        assert_eq!(policy.pause_ms(2), 2000);
        assert_eq!(policy.pause_ms(3), 3000);
        assert_eq!(policy.pause_ms(40), 3000);

        let mut alarm = Alarm::scheduled(NOW, None);
        let mut now = NOW;
        for expected_pause in [1000, 2000, 3000] {
            let AfterFailure::Retry(next) = alarm.after_failure("boom", &policy, now) else {
                panic!("attempt {} is retried", alarm.attempt)
            };
            assert_eq!(next.next_attempt_ms(), now + expected_pause);
            assert_eq!(next.at, alarm.at, "the scheduled time stays");
            assert_eq!(next.last_error.as_deref(), Some("boom"));
            now = next.next_attempt_ms();
            alarm = next;
        }
        assert_eq!(alarm.attempt, 4);
        assert_eq!(
            alarm.after_failure("boom", &policy, now),
            AfterFailure::Dropped
        );

        let periodic = Alarm {
            every_ms: Some(500),
            ..alarm
        };
        let AfterFailure::NextTick(next) = periodic.after_failure("boom", &policy, NOW + 6100)
        else {
            panic!("a recurring alarm moves on")
        };
        assert_eq!(next.at_ms(), NOW + 6500);
        assert_eq!(next.attempt, 1);
        assert_eq!(next.last_error.as_deref(), Some("boom"));
    }

    #[test]
    fn success_advances_recurring_and_ends_one_shot() {
        assert_eq!(Alarm::scheduled(NOW, None).after_success(NOW + 5), None);
        let next = Alarm::scheduled(NOW, Some(1000))
            .after_success(NOW + 10_500)
            .unwrap();
        assert_eq!(next.at_ms(), NOW + 11_000);
        assert_eq!(next.every_ms, Some(1000));
    }
}
