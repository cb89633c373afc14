//! [`Retry`]: how failed attempts are retried.

use std::time::Duration;

/// Retry policy: exponential backoff with jitter.
///
/// Attempt `n` (starting at 1) that fails is followed, if `n < max_attempts`, by a wait of
/// `min(initial * factor^(n-1), max_delay)`, reduced by a random fraction up to `jitter` so
/// that many failing runs do not retry in lockstep.
///
/// ```
/// use std::time::Duration;
/// use taskyard::Retry;
///
/// let retry = Retry::exponential(5).initial(Duration::from_millis(200)).max_delay(Duration::from_secs(10));
/// assert_eq!(retry.max_attempts(), 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    max_attempts: u32,
    initial: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: f64,
}

impl Retry {
    /// No retries: one attempt.
    pub const NONE: Retry = Retry {
        max_attempts: 1,
        initial: Duration::from_millis(100),
        factor: 2.0,
        max_delay: Duration::from_secs(60),
        jitter: 0.0,
    };

    /// Up to `max_attempts` attempts in all (at least 1), waiting 100 ms, 200 ms, 400 ms… (at
    /// most 60 s) between them, each wait shortened by up to 20% at random.
    pub fn exponential(max_attempts: u32) -> Self {
        Retry {
            max_attempts: max_attempts.max(1),
            jitter: 0.2,
            ..Retry::NONE
        }
    }

    /// The wait before the second attempt.
    pub fn initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// The growth of the wait per attempt (at least 1).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() { factor.max(1.0) } else { 1.0 };
        self
    }

    /// The longest wait.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The largest fraction (0 to 1) by which a wait is shortened at random.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// How many attempts a run gets in all (1 for no retry).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after failed attempt `attempt` (1-based), before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let capped = secs.min(self.max_delay.as_secs_f64());
        Duration::from_secs_f64(capped.max(0.0))
    }

    /// The wait after failed attempt `attempt` (1-based), with jitter applied.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        if self.jitter == 0.0 {
            return base;
        }
        base.mul_f64(1.0 - self.jitter * fastrand::f64())
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stop_at_the_cap() {
        let retry = Retry::exponential(10)
            .initial(Duration::from_millis(100))
            .max_delay(Duration::from_millis(500))
            .jitter(0.0);
        let delays: Vec<u128> = (1..=5).map(|n| retry.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let retry = Retry::exponential(3)
            .initial(Duration::from_millis(1000))
            .jitter(0.5);
        for _ in 0..1000 {
            let d = retry.delay(1).as_millis();
            assert!((500..=1000).contains(&d), "{d}");
        }
    }
}
