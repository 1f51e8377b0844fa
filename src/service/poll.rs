//! The poll schedule: a pure function of an order's age, its provider's limit and whether it
//! has ended, so it can be tested without a clock.
//!
//! Invariant: never faster than the provider allows; quick while a customer is likely at the
//! counter, slower after; an ended unpaid order is still watched, slowly, until its grace
//! window closes, so that a late payment is caught.

use std::time::Duration;

/// When to ask again, or `None` to stop watching.
///
/// - `age`: time since the order was created;
/// - `min_interval`: the provider's limit;
/// - `ended`: the order ended unpaid (expired, cancelled, failed) or passed its expiry;
/// - `watching`: still inside its watch window (before expiry + grace).
pub fn next_poll(
    age: Duration,
    min_interval: Duration,
    ended: bool,
    watching: bool,
) -> Option<Duration> {
    if !watching {
        return None;
    }
    let base = if ended {
        Duration::from_secs(10)
    } else if age < Duration::from_secs(120) {
        // The customer is usually at the counter with a phone out: answer within a second.
        Duration::from_secs(1)
    } else if age < Duration::from_secs(300) {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    Some(base.max(min_interval))
}

/// Delays after a failed request (network down, provider error): doubling from 1 s to 30 s,
/// never under the provider's limit.
pub fn retry_delay(failures: u32, min_interval: Duration) -> Duration {
    let secs = 1u64 << failures.min(5);
    Duration::from_secs(secs.min(30)).max(min_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn quick_then_backing_off() {
        assert_eq!(next_poll(S(0), S(1), false, true), Some(S(1)));
        assert_eq!(next_poll(S(119), S(1), false, true), Some(S(1)));
        assert_eq!(next_poll(S(120), S(1), false, true), Some(S(2)));
        assert_eq!(next_poll(S(300), S(1), false, true), Some(S(5)));
        assert_eq!(next_poll(S(300), S(1), true, true), Some(S(10)));
        assert_eq!(next_poll(S(3), S(1), false, false), None);
    }

    #[test]
    fn never_faster_than_the_provider_allows() {
        for age in 0..2000 {
            for ended in [false, true] {
                let delay = next_poll(S(age), S(60), ended, true);
                assert!(delay.is_some_and(|d| d >= S(60)));
            }
        }
        for failures in 0..40 {
            assert!(retry_delay(failures, S(60)) >= S(60));
            assert!(retry_delay(failures, S(0)) <= S(30));
        }
        assert_eq!(retry_delay(0, S(0)), S(1));
        assert_eq!(retry_delay(3, S(0)), S(8));
    }
}
