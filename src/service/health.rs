//! Provider health: per account, when a call last got a valid answer, how many calls failed
//! in a row since, and the last failure in plain words ([`crate::providers::health`]).
//!
//! Every exchange with a provider (create, query, account check, close) is recorded here.
//! Invariant: the UI is told ([`super::Event::Health`]) only when what it shows changes; a
//! success after a success only moves the time, which is not sent (each event wakes the UI
//! for a repaint, and an order watched for a late payment is asked every 10 s even on an
//! idle till): the UI reads the latest time from [`super::ServiceHandle::health`] whenever
//! it draws anyway, and the next event carries it too.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Event, Inner, now_ms};
pub use crate::providers::health::{Failure, FailureKind};

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
    /// What the UI was last sent.
    sent: Option<ProviderHealth>,
}

impl HealthBook {
    /// Records an outcome at wall clock `wall_ms`; returns the health to send when what the
    /// UI shows changed beyond the time.
    fn record(
        &mut self,
        provider_id: &str,
        outcome: Result<(), Failure>,
        wall_ms: i64,
    ) -> Option<ProviderHealth> {
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
        if tracked
            .sent
            .as_ref()
            .is_some_and(|sent| sent.same_but_time(&tracked.now))
        {
            return None;
        }
        tracked.sent = Some(tracked.now.clone());
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
    pub(super) fn record_health(&self, provider_id: &str, outcome: Result<(), Failure>) {
        if let Err(failure) = &outcome {
            tracing::info!(provider = provider_id, kind = ?failure.kind, "provider call failed: {}", failure.detail);
        }
        let changed = self.health_book().record(provider_id, outcome, now_ms());
        if let Some(health) = changed {
            self.emit(Event::Health {
                provider_id: provider_id.to_string(),
                health,
            });
        }
    }
}

impl Inner {
    /// Records a provider's answer: `Ok` when it parsed as a valid answer, else the parse
    /// error, sorted by [`crate::providers::health::describe`].
    pub(super) fn record_answer(
        &self,
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
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    fn down() -> Result<(), Failure> {
        Err(Failure::unreachable("timeout"))
    }

    #[test]
    fn only_changes_are_sent_not_the_time_alone() {
        let mut book = HealthBook::default();
        let first = book.record("a", Ok(()), 1_000).unwrap();
        assert_eq!(first.last_success_ms, Some(1_000));
        // A success right after: only the time moved, nothing sent; the book has it.
        assert_eq!(book.record("a", Ok(()), 2_000), None);
        assert_eq!(book.all()[0].1.last_success_ms, Some(2_000));
        // Failures are sent at once, counted, with the latest success time.
        let one = book.record("a", down(), 3_000).unwrap();
        assert_eq!(one.consecutive_failures, 1);
        assert_eq!(one.last_success_ms, Some(2_000));
        assert_eq!(
            one.last_failure.map(|f| f.kind),
            Some(FailureKind::ProviderDown)
        );
        let two = book.record("a", down(), 4_000).unwrap();
        assert_eq!(two.consecutive_failures, 2);
        // A success resets, at once.
        let back = book.record("a", Ok(()), 5_000).unwrap();
        assert_eq!(back.consecutive_failures, 0);
        assert_eq!(back.last_failure, None);
        assert_eq!(back.last_success_ms, Some(5_000));
        // Another account is its own.
        assert!(book.record("b", down(), 6_000).is_some());
        assert_eq!(book.all().len(), 2);
    }
}
