//! One way to try again: a bounded number of tries, with an optional
//! backoff between them. Every loop of the service that retries (a
//! transaction that met a concurrent change, DynamoDB's unprocessed keys,
//! SQS entries refused in a batch) goes through [`retry`], so how often and
//! how long we wait is said in one place per caller, as a [`Policy`].

use std::future::Future;
use std::time::Duration;

/// What one try came to.
#[derive(Debug)]
pub enum Attempt<T, A, E> {
    /// Done: the value.
    Done(T),
    /// Worth another try (contention, a change meanwhile); `A` says why.
    Again(A),
    /// Not worth another try: the error as it is.
    Stop(E),
}

/// How many tries, and the pause before each try after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Tries in all, at least one.
    pub tries: u32,
    /// Pause before try `n + 1` (n ≥ 1): `base · 2^(n − 1)`, at most `cap`; zero for none.
    pub base: Duration,
    pub cap: Duration,
}

impl Policy {
    /// `tries` at once, with no pause (a read–decide–write that met a change: read again now).
    pub const fn immediate(tries: u32) -> Self {
        Self { tries, base: Duration::ZERO, cap: Duration::ZERO }
    }

    /// `tries` with an exponential pause from `base` up to `cap`.
    pub const fn backoff(tries: u32, base: Duration, cap: Duration) -> Self {
        Self { tries, base, cap }
    }

    /// The pause after `failed` failed tries.
    pub fn pause(&self, failed: u32) -> Duration {
        let exponent = failed.saturating_sub(1).min(16);
        self.base.saturating_mul(1 << exponent).min(self.cap)
    }
}

/// Runs `try_once(n)` (n = 1, 2, …) until it is done or stops, at most
/// `policy.tries` times. When every try asked for another, the last reason
/// becomes the error through `exhausted`.
pub async fn retry<T, A, E, F, Fut>(policy: Policy, exhausted: impl FnOnce(A) -> E, mut try_once: F) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T, A, E>>,
{
    let tries = policy.tries.max(1);
    let mut n = 1;
    loop {
        match try_once(n).await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Stop(e) => return Err(e),
            Attempt::Again(why) if n >= tries => return Err(exhausted(why)),
            Attempt::Again(_) => {
                let pause = policy.pause(n);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                n += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn it_stops_at_the_first_done_or_stop_and_gives_up_after_the_last_try() {
        let calls = Cell::new(0);
        let done: Result<u32, String> = retry(Policy::immediate(3), |a: &str| a.to_owned(), |n| {
            calls.set(calls.get() + 1);
            async move { if n == 2 { Attempt::Done(n) } else { Attempt::Again("busy") } }
        })
        .await;
        assert_eq!((done, calls.get()), (Ok(2), 2));

        let stopped: Result<(), &str> = retry(Policy::immediate(3), |_: ()| "exhausted", |_| async { Attempt::Stop("bad") }).await;
        assert_eq!(stopped, Err("bad"));

        calls.set(0);
        let given_up: Result<(), String> = retry(Policy::immediate(3), |n: u32| format!("gave up after {n}"), |n| {
            calls.set(calls.get() + 1);
            async move { Attempt::Again(n) }
        })
        .await;
        assert_eq!((given_up, calls.get()), (Err("gave up after 3".into()), 3));
    }

    #[test]
    fn the_pause_doubles_up_to_its_cap() {
        let p = Policy::backoff(6, Duration::from_millis(25), Duration::from_millis(150));
        let pauses: Vec<u128> = (1..=5).map(|n| p.pause(n).as_millis()).collect();
        assert_eq!(pauses, [25, 50, 100, 150, 150]);
        assert_eq!(Policy::immediate(3).pause(2), Duration::ZERO);
    }
}
