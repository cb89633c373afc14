//! [`RunId`]: a run's id, a UUIDv7 made in this process.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::ParseError;

/// A run's id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(uuid::Uuid);

impl RunId {
    /// A new id, ordered after every id this process made before.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        Self::at_millisecond(now_ms)
    }

    /// A new id made at `now`, for a caller that reads the clock anyway: ordered after
    /// every id this process made before, like [`RunId::new`].
    pub fn at(now: jiff::Timestamp) -> Self {
        Self::at_millisecond(u64::try_from(now.as_millisecond()).unwrap_or(0))
    }

    fn at_millisecond(now_ms: u64) -> Self {
        RunId(uuid::Uuid::from_u128(uuid_v7_bits(
            next_tick(now_ms),
            fastrand::u64(..),
        )))
    }

    /// One of `n` places (`0..n`) for this id, from its random bits: ids spread evenly.
    pub(crate) fn spread(&self, n: usize) -> usize {
        // The low 58 bits are random (see `uuid_v7_bits`).
        (self.0.as_u128() as u64 % n.max(1) as u64) as usize
    }

    /// When the id was made, to the millisecond.
    pub fn created_at(&self) -> jiff::Timestamp {
        let ms = (self.0.as_u128() >> 80) as i64;
        jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}

/// The last id's `unix_ms << 16 | sequence`. `uuid::Uuid::now_v7` asks the OS for fresh
/// random bytes on every call, a system call that cost more than the rest of a no-op run;
/// here ordering comes from this counter and the random bits from a thread-local generator
/// seeded once by the OS.
static LAST_TICK: AtomicU64 = AtomicU64::new(0);

/// The next `unix_ms << 16 | sequence`, strictly greater than any before it in this process.
/// More than 65,536 ids in one millisecond carry into the next millisecond, which RFC 9562
/// allows for monotonic counters.
fn next_tick(now_ms: u64) -> u64 {
    let mut current = LAST_TICK.load(Ordering::Relaxed);
    loop {
        let next = if current >> 16 < now_ms {
            now_ms << 16
        } else {
            current + 1
        };
        match LAST_TICK.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => current = actual,
        }
    }
}

/// A UUIDv7 (RFC 9562, method 1): 48-bit unix milliseconds, version 7, the 16-bit sequence
/// split over `rand_a` (12 bits) and the top of `rand_b` (4 bits), variant `10`, then 58
/// random bits.
fn uuid_v7_bits(tick: u64, random: u64) -> u128 {
    let ms = u128::from(tick >> 16) & ((1 << 48) - 1);
    let sequence = u128::from(tick & 0xFFFF);
    (ms << 80)
        | (0x7 << 76)
        | ((sequence >> 4) << 64)
        | (0b10 << 62)
        | ((sequence & 0xF) << 58)
        | (u128::from(random) & ((1 << 58) - 1))
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for RunId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(RunId)
            .map_err(|_| ParseError::RunId(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids made one after another spread evenly over the places, each id always to the
    /// same one: the recorder's lanes get even shares, and a run's states one lane.
    #[test]
    fn ids_spread_evenly_and_each_always_to_one_place() {
        let ids: Vec<RunId> = (0..20_000).map(|_| RunId::new()).collect();
        for places in [2, 3] {
            let mut counts = vec![0usize; places];
            for id in &ids {
                let place = id.spread(places);
                assert_eq!(place, id.spread(places));
                counts[place] += 1;
            }
            let even = ids.len() / places;
            assert!(
                counts.iter().all(|&count| count.abs_diff(even) < even / 10),
                "{counts:?}"
            );
        }
    }

    #[test]
    fn run_ids_are_version_7_and_strictly_increasing() {
        let ids: Vec<RunId> = (0..200_000).map(|_| RunId::new()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        for id in &ids[..10] {
            assert_eq!(id.0.get_version_num(), 7, "{id}");
            assert_eq!(id.0.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
        let age = jiff::Timestamp::now().as_millisecond() - ids[0].created_at().as_millisecond();
        assert!((0..5_000).contains(&age), "id made {age} ms ago");
    }

    #[test]
    fn sequence_overflow_carries_into_the_next_millisecond() {
        let last_of_ms = (1_000 << 16) | 0xFFFF;
        let a = uuid_v7_bits(last_of_ms, u64::MAX);
        let b = uuid_v7_bits(last_of_ms + 1, 0);
        assert!(a < b);
        assert_eq!(b >> 80, 1_001);
    }
}
