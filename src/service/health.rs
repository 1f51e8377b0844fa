//! Provider health: per account, when a call last got a valid answer, how many calls failed
//! in a row since, and the last failure in plain words ([`crate::providers::health`]).
//!
//! Every exchange with a provider (create, query, account check, close) is recorded here.
//! Invariant: the UI is told ([`super::Event::Health`]) only when what it shows changes; a
//! success after a success only moves the time, which is sent at most once per
//! [`TIME_ONLY_EVERY`] (the latest time follows in one delayed event), so a busy till does not
//! repaint for it and an idle one does nothing at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Event, Inner, now_ms};
use crate::providers::health::Failure;

/// The longest a moved "last success" time waits to be shown.
pub const TIME_ONLY_EVERY: Duration = Duration::from_secs(10);

/// One provider account's health, as the status bar shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderHealth {
    /// When a call last got a valid answer (Unix ms); `None` before the first.
    pub last_success_ms: Option<i64>,
    /// How many calls failed since then (0 after a success).
    pub consecutive_failures: u32,
    /// The latest failure while `consecutive_failures > 0`.
    pub last_failure: Option<Failure>,
}

impl ProviderHealth {
    /// Whether `other` shows the same except, perhaps, a later success time.
    fn same_but_time(&self, other: &ProviderHealth) -> bool {
        self.consecutive_failures == other.consecutive_failures
            && self.last_failure == other.last_failure
            && self.last_success_ms.is_some() == other.last_success_ms.is_some()
    }
}

/// The health of every account, and what the UI was last told.
#[derive(Default)]
pub(super) struct HealthBook {
    accounts: HashMap<String, Tracked>,
}

#[derive(Default)]
struct Tracked {
    now: ProviderHealth,
    sent: Option<(ProviderHealth, Instant)>,
    /// A delayed event with the latest time is on its way.
    flush_pending: bool,
}

/// What to do after recording.
enum Post {
    Nothing,
    Now(ProviderHealth),
    After(Duration),
}

impl HealthBook {
    /// Records an outcome at `at` (wall clock `wall_ms`); says what to tell the UI.
    fn record(
        &mut self,
        provider_id: &str,
        outcome: Result<(), Failure>,
        at: Instant,
        wall_ms: i64,
    ) -> Post {
        let tracked = self.accounts.entry(provider_id.to_string()).or_default();
        match outcome {
            Ok(()) => {
                tracked.now.last_success_ms = Some(wall_ms);
                tracked.now.consecutive_failures = 0;
                tracked.now.last_failure = None;
            }
            Err(failure) => {
                tracked.now.consecutive_failures =
                    tracked.now.consecutive_failures.saturating_add(1);
                tracked.now.last_failure = Some(failure);
            }
        }
        match &tracked.sent {
            Some((sent, _)) if *sent == tracked.now => Post::Nothing,
            Some((sent, when)) if sent.same_but_time(&tracked.now) => {
                let since = at.saturating_duration_since(*when);
                if since >= TIME_ONLY_EVERY {
                    tracked.sent = Some((tracked.now.clone(), at));
                    Post::Now(tracked.now.clone())
                } else if tracked.flush_pending {
                    Post::Nothing
                } else {
                    tracked.flush_pending = true;
                    Post::After(TIME_ONLY_EVERY - since)
                }
            }
            _ => {
                tracked.sent = Some((tracked.now.clone(), at));
                Post::Now(tracked.now.clone())
            }
        }
    }

    /// The delayed event: the latest health, unless something sent it meanwhile.
    fn flush(&mut self, provider_id: &str, at: Instant) -> Option<ProviderHealth> {
        let tracked = self.accounts.get_mut(provider_id)?;
        tracked.flush_pending = false;
        if tracked
            .sent
            .as_ref()
            .is_some_and(|(sent, _)| *sent == tracked.now)
        {
            return None;
        }
        tracked.sent = Some((tracked.now.clone(), at));
        Some(tracked.now.clone())
    }

    /// Every account's health now.
    pub(super) fn all(&self) -> Vec<(String, ProviderHealth)> {
        self.accounts
            .iter()
            .map(|(id, tracked)| (id.clone(), tracked.now.clone()))
            .collect()
    }
}

impl Inner {
    fn health_book(&self) -> std::sync::MutexGuard<'_, HealthBook> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one exchange with `provider_id`: `Ok` for an answer that parsed as a valid
    /// provider answer, else why not.
    pub(super) fn record_health(self: &Arc<Self>, provider_id: &str, outcome: Result<(), Failure>) {
        if let Err(failure) = &outcome {
            tracing::info!(provider = provider_id, kind = ?failure.kind, "provider call failed: {}", failure.detail);
        }
        let post = self
            .health_book()
            .record(provider_id, outcome, Instant::now(), now_ms());
        match post {
            Post::Nothing => {}
            Post::Now(health) => self.emit(Event::Health {
                provider_id: provider_id.to_string(),
                health,
            }),
            Post::After(wait) => {
                let inner = self.clone();
                let id = provider_id.to_string();
                self.runtime.spawn(async move {
                    tokio::time::sleep(wait).await;
                    let health = inner.health_book().flush(&id, Instant::now());
                    if let Some(health) = health {
                        inner.emit(Event::Health {
                            provider_id: id,
                            health,
                        });
                    }
                });
            }
        }
    }
}

impl Inner {
    /// Records a provider's answer: `Ok` when it parsed as a valid answer, else the parse
    /// error, sorted by [`crate::providers::health::describe`].
    pub(super) fn record_answer(
        self: &Arc<Self>,
        provider: &dyn crate::providers::Provider,
        parsed: Result<(), &crate::providers::ProviderError>,
    ) {
        let outcome = parsed.map_err(|err| crate::providers::health::describe(provider, err));
        self.record_health(provider.id(), outcome);
    }
}

/// A shared, empty book.
pub(super) fn book() -> Mutex<HealthBook> {
    Mutex::new(HealthBook::default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::providers::health::FailureKind;

    fn down() -> Result<(), Failure> {
        Err(Failure::unreachable("timeout"))
    }

    fn sent(post: Post) -> Option<ProviderHealth> {
        match post {
            Post::Now(health) => Some(health),
            _ => None,
        }
    }

    #[test]
    fn only_changes_are_sent_and_time_alone_waits() {
        let mut book = HealthBook::default();
        let t0 = Instant::now();
        let first = sent(book.record("a", Ok(()), t0, 0)).unwrap();
        assert!(first.last_success_ms.is_some());
        // A success right after: only the time moved, sent later in one event.
        assert!(matches!(
            book.record("a", Ok(()), t0 + Duration::from_secs(1), 1_000),
            Post::After(_)
        ));
        assert!(matches!(
            book.record("a", Ok(()), t0 + Duration::from_secs(2), 2_000),
            Post::Nothing
        ));
        assert!(book.flush("a", t0 + Duration::from_secs(10)).is_some());
        // Failures are sent at once, counted.
        let one = sent(book.record("a", down(), t0 + Duration::from_secs(11), 11_000)).unwrap();
        assert_eq!(one.consecutive_failures, 1);
        assert_eq!(
            one.last_failure.map(|f| f.kind),
            Some(FailureKind::ProviderDown)
        );
        let two = sent(book.record("a", down(), t0 + Duration::from_secs(12), 12_000)).unwrap();
        assert_eq!(two.consecutive_failures, 2);
        // A success resets, at once.
        let back = sent(book.record("a", Ok(()), t0 + Duration::from_secs(13), 13_000)).unwrap();
        assert_eq!(back.consecutive_failures, 0);
        assert_eq!(back.last_failure, None);
        // Past the interval, the time alone is sent at once.
        assert!(sent(book.record("a", Ok(()), t0 + Duration::from_secs(30), 30_000)).is_some());
        assert_eq!(book.all().len(), 1);
    }
}
