//! A token-bucket rate limiter in integer bytes and 100 ns ticks, free of overflow for every
//! input.
//!
//! The bucket holds up to `burst_bytes` tokens (one token = one byte) and gains
//! `bytes_per_second` tokens per second. A frame passes when the bucket holds at least its
//! length in tokens, which it then spends; a frame that does not pass spends nothing. Refill
//! happens lazily, on each [`TokenBucket::admit`].
//!
//! Arithmetic: the refill for `elapsed` ticks is `elapsed * rate / 10^7` bytes. The fraction
//! below one byte is kept in `remainder` (in byte-ticks, always below 10^7) so that frequent
//! small refills lose nothing. Two precomputed bounds keep the hot path in `u64`:
//!
//! - `fill_ticks = ceil(burst * 10^7 / rate)` (computed in `u128` when the limit is set): after
//!   that many ticks even an empty bucket is full, so a longer gap (or a clock jump) just fills
//!   the bucket;
//! - below that, `elapsed * rate + remainder` is computed with `checked_*` in `u64`, and only
//!   if that overflows (rates and gaps beyond about 1.8e12 byte-seconds) in `u128`, off the
//!   common path.
//!
//! A clock that goes backwards is treated as no time passing.

use super::types::RateLimit;
use crate::platform::Ticks;

const TICKS_PER_SECOND: u64 = Ticks::PER_SECOND;

/// The state of one bucket as saved state carries it: nothing tied to this host's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BucketSnapshot {
    /// Whole tokens (bytes) in the bucket.
    pub tokens: u64,
    /// Accumulated fraction of a token, in byte-ticks (below 10^7).
    pub remainder: u64,
    /// Ticks since the bucket was last refilled.
    pub refill_age: u64,
}

/// Why a [`BucketSnapshot`] cannot become a live bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BucketSnapshotError {
    /// The limit is limited but has a zero burst.
    InvalidLimit,
    /// More tokens than the burst allows.
    TokensAboveBurst,
    /// A fraction of a token that is a whole token or more.
    RemainderTooLarge,
}

/// A token bucket for one direction of one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Ticks after which an empty bucket is full again (0 when unlimited).
    fill_ticks: u64,
    tokens: u64,
    remainder: u64,
    last_refill: Ticks,
}

impl TokenBucket {
    /// A full bucket for `limit`, last refilled at tick 0.
    ///
    /// An invalid limit ([`RateLimit::is_valid`] false: a rate with zero burst) admits nothing;
    /// the port table refuses such a configuration before it gets here.
    #[must_use]
    pub const fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            fill_ticks: fill_ticks(limit),
            tokens: limit.burst_bytes,
            remainder: 0,
            last_refill: Ticks(0),
        }
    }

    /// The configured limit.
    #[must_use]
    pub const fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Whole tokens in the bucket as of the last refill.
    #[must_use]
    pub const fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Decides whether a frame of `length` bytes passes at `now`, spending its tokens if so.
    pub fn admit(&mut self, length: u32, now: Ticks) -> bool {
        if self.limit.is_unlimited() {
            return true;
        }
        self.refill(now);
        match self.tokens.checked_sub(u64::from(length)) {
            Some(left) => {
                self.tokens = left;
                true
            }
            None => false,
        }
    }

    /// The bucket's state relative to `now`, for saving.
    #[must_use]
    pub const fn snapshot(&self, now: Ticks) -> BucketSnapshot {
        BucketSnapshot {
            tokens: self.tokens,
            remainder: self.remainder,
            refill_age: now.saturating_since(self.last_refill),
        }
    }

    /// Checks that `snapshot` can become a bucket for `limit`, without building it.
    ///
    /// # Errors
    ///
    /// The first inconsistency found.
    pub const fn validate(
        limit: RateLimit,
        snapshot: &BucketSnapshot,
    ) -> Result<(), BucketSnapshotError> {
        if !limit.is_valid() {
            return Err(BucketSnapshotError::InvalidLimit);
        }
        if !limit.is_unlimited() && snapshot.tokens > limit.burst_bytes {
            return Err(BucketSnapshotError::TokensAboveBurst);
        }
        if snapshot.remainder >= TICKS_PER_SECOND {
            return Err(BucketSnapshotError::RemainderTooLarge);
        }
        Ok(())
    }

    /// Rebuilds a bucket from saved state on this host's clock: last refilled `refill_age`
    /// ticks before `now` (at tick 0 if this host's clock is younger than the age).
    ///
    /// # Errors
    ///
    /// As [`TokenBucket::validate`].
    pub const fn restore(
        limit: RateLimit,
        snapshot: &BucketSnapshot,
        now: Ticks,
    ) -> Result<Self, BucketSnapshotError> {
        if let Err(error) = Self::validate(limit, snapshot) {
            return Err(error);
        }
        Ok(Self {
            limit,
            fill_ticks: fill_ticks(limit),
            tokens: snapshot.tokens,
            remainder: snapshot.remainder,
            last_refill: Ticks(now.0.saturating_sub(snapshot.refill_age)),
        })
    }

    fn refill(&mut self, now: Ticks) {
        let elapsed = now.saturating_since(self.last_refill);
        if elapsed == 0 {
            return;
        }
        self.last_refill = now;
        if elapsed >= self.fill_ticks {
            self.fill();
            return;
        }
        let (whole, fraction) = match self
            .limit
            .bytes_per_second
            .checked_mul(elapsed)
            .and_then(|scaled| scaled.checked_add(self.remainder))
        {
            Some(scaled) => (scaled / TICKS_PER_SECOND, scaled % TICKS_PER_SECOND),
            None => wide_refill(self.limit.bytes_per_second, elapsed, self.remainder),
        };
        match self.tokens.checked_add(whole) {
            Some(tokens) if tokens < self.limit.burst_bytes => {
                self.tokens = tokens;
                self.remainder = fraction;
            }
            _ => self.fill(),
        }
    }

    fn fill(&mut self) {
        self.tokens = self.limit.burst_bytes;
        self.remainder = 0;
    }
}

/// `ceil(burst * 10^7 / rate)`, saturated to `u64`; 0 when unlimited.
const fn fill_ticks(limit: RateLimit) -> u64 {
    if limit.bytes_per_second == 0 {
        return 0;
    }
    // burst * 10^7 < 2^64 * 2^24, and adding rate - 1 < 2^64 keeps it far below 2^128.
    let scaled = (limit.burst_bytes as u128)
        .saturating_mul(TICKS_PER_SECOND as u128)
        .saturating_add((limit.bytes_per_second as u128).saturating_sub(1));
    // The rate is non-zero here; `checked_div` only states it.
    let ticks = match scaled.checked_div(limit.bytes_per_second as u128) {
        Some(ticks) => ticks,
        None => u128::MAX,
    };
    if ticks > u64::MAX as u128 {
        u64::MAX
    } else {
        ticks as u64
    }
}

/// The refill for a product that does not fit `u64`: whole bytes (saturated) and the fraction.
#[cold]
fn wide_refill(rate: u64, elapsed: u64, remainder: u64) -> (u64, u64) {
    // Both factors are below 2^64, so the product is below 2^128 - 2^65 and adding a remainder
    // below 2^64 cannot saturate; saturating ops state that without a panic path.
    let scaled = u128::from(rate)
        .saturating_mul(u128::from(elapsed))
        .saturating_add(u128::from(remainder));
    let per_second = u128::from(TICKS_PER_SECOND);
    let whole = scaled
        .checked_div(per_second)
        .and_then(|whole| u64::try_from(whole).ok())
        .unwrap_or(u64::MAX);
    let fraction = scaled
        .checked_rem(per_second)
        .and_then(|fraction| u64::try_from(fraction).ok())
        .unwrap_or(0);
    (whole, fraction)
}

#[cfg(test)]
mod tests {
    use super::{BucketSnapshot, BucketSnapshotError, TokenBucket};
    use crate::platform::Ticks;
    use crate::port::types::RateLimit;
    use proptest::prelude::*;

    const SECOND: u64 = Ticks::PER_SECOND;

    fn limit(bytes_per_second: u64, burst_bytes: u64) -> RateLimit {
        RateLimit {
            bytes_per_second,
            burst_bytes,
        }
    }

    #[test]
    fn unlimited_admits_everything() {
        let mut bucket = TokenBucket::new(RateLimit::UNLIMITED);
        for t in 0..100 {
            assert!(bucket.admit(u32::MAX, Ticks(t)));
        }
    }

    #[test]
    fn permits_within_burst_then_drops() {
        let mut bucket = TokenBucket::new(limit(1000, 3000));
        let now = Ticks(0);
        assert!(bucket.admit(1000, now));
        assert!(bucket.admit(2000, now));
        assert!(!bucket.admit(1, now), "burst spent");
        assert_eq!(bucket.tokens(), 0);
    }

    #[test]
    fn a_dropped_frame_spends_nothing() {
        let mut bucket = TokenBucket::new(limit(1000, 1500));
        assert!(!bucket.admit(1501, Ticks(0)));
        assert!(bucket.admit(1500, Ticks(0)));
    }

    #[test]
    fn refills_with_time_and_caps_at_burst() {
        let mut bucket = TokenBucket::new(limit(1000, 3000));
        assert!(bucket.admit(3000, Ticks(0)));
        // Half a second: 500 bytes.
        assert!(!bucket.admit(501, Ticks(SECOND / 2)));
        assert!(bucket.admit(500, Ticks(SECOND / 2)));
        // An hour later the bucket is full, never more.
        assert!(!bucket.admit(3001, Ticks(3600 * SECOND)));
        assert_eq!(bucket.tokens(), 3000);
    }

    #[test]
    fn tiny_refills_accumulate_fractions() {
        // 3 bytes per second refilled every tick: each step adds 3e-7 bytes.
        let mut bucket = TokenBucket::new(limit(3, 10));
        assert!(bucket.admit(10, Ticks(0)));
        let mut t = 0;
        while t < SECOND {
            t += 1000;
            bucket.admit(0, Ticks(t));
        }
        assert_eq!(bucket.tokens(), 3);
    }

    #[test]
    fn clock_going_back_adds_nothing() {
        let mut bucket = TokenBucket::new(limit(1000, 1000));
        assert!(bucket.admit(1000, Ticks(10 * SECOND)));
        assert!(!bucket.admit(1, Ticks(SECOND)));
        // Time is counted from the latest reading, not the earlier one.
        assert!(!bucket.admit(1, Ticks(10 * SECOND)));
        assert!(bucket.admit(1, Ticks(10 * SECOND + SECOND / 1000)));
    }

    #[test]
    fn extreme_configs_do_not_overflow() {
        for (rate, burst) in [
            (u64::MAX, u64::MAX),
            (u64::MAX, 1),
            (1, u64::MAX),
            (u64::MAX / 3, u64::MAX / 2),
        ] {
            let mut bucket = TokenBucket::new(limit(rate, burst));
            bucket.admit(u32::MAX, Ticks(0));
            for t in [
                1,
                2,
                SECOND - 1,
                SECOND,
                u64::MAX / 2,
                u64::MAX - 1,
                u64::MAX,
            ] {
                bucket.admit(u32::MAX, Ticks(t));
                assert!(bucket.tokens() <= burst);
            }
        }
    }

    #[test]
    fn huge_rate_refills_through_the_wide_path() {
        // rate * elapsed overflows u64 for elapsed >= 2, yet the bucket is not full yet.
        let mut bucket = TokenBucket::new(limit(u64::MAX, u64::MAX));
        assert!(bucket.admit(u32::MAX, Ticks(0)));
        assert!(bucket.admit(u32::MAX, Ticks(0)));
        let spent = 2 * u64::from(u32::MAX);
        assert_eq!(bucket.tokens(), u64::MAX - spent);
        // 2 ticks at u64::MAX bytes/s (3.7e12 bytes, computed in u128) refill what was spent.
        bucket.admit(0, Ticks(2));
        assert_eq!(bucket.tokens(), u64::MAX);
    }

    #[test]
    fn snapshot_restores_relative_to_the_new_clock() {
        let mut bucket = TokenBucket::new(limit(1000, 5000));
        assert!(bucket.admit(4000, Ticks(100 * SECOND)));
        let snapshot = bucket.snapshot(Ticks(100 * SECOND + SECOND / 2));
        assert_eq!(snapshot.refill_age, SECOND / 2);
        let mut restored =
            TokenBucket::restore(limit(1000, 5000), &snapshot, Ticks(7 * SECOND)).unwrap();
        // Half a second already passed on the source: 500 bytes of refill are due now.
        assert!(restored.admit(1500, Ticks(7 * SECOND)));
        assert!(!restored.admit(1, Ticks(7 * SECOND)));
    }

    #[test]
    fn inconsistent_snapshots_are_refused() {
        let ok = BucketSnapshot {
            tokens: 10,
            remainder: 0,
            refill_age: 0,
        };
        assert_eq!(
            TokenBucket::validate(limit(1, 0), &ok),
            Err(BucketSnapshotError::InvalidLimit)
        );
        assert_eq!(
            TokenBucket::validate(limit(1, 9), &ok),
            Err(BucketSnapshotError::TokensAboveBurst)
        );
        assert_eq!(
            TokenBucket::validate(
                limit(1, 10),
                &BucketSnapshot {
                    remainder: SECOND,
                    ..ok
                }
            ),
            Err(BucketSnapshotError::RemainderTooLarge)
        );
        assert_eq!(TokenBucket::validate(limit(1, 10), &ok), Ok(()));
    }

    proptest! {
        #[test]
        fn never_exceeds_burst_and_never_panics(
            rate in any::<u64>(),
            burst in 1..=u64::MAX,
            steps in proptest::collection::vec((any::<u64>(), any::<u32>()), 1..40),
        ) {
            let mut bucket = TokenBucket::new(limit(rate, burst));
            let mut now = 0u64;
            for (gap, length) in steps {
                now = now.saturating_add(gap >> (gap % 64));
                let before = bucket.tokens();
                let admitted = bucket.admit(length, Ticks(now));
                prop_assert!(bucket.tokens() <= burst);
                if !admitted {
                    prop_assert!(rate != 0);
                    prop_assert!(bucket.tokens() < u64::from(length));
                    prop_assert!(bucket.tokens() >= before);
                }
            }
        }

        #[test]
        fn refill_matches_exact_arithmetic(
            rate in 1..1_000_000_000u64,
            gaps in proptest::collection::vec(0..(2 * SECOND), 1..20),
        ) {
            // Start empty with a burst too large to reach: tokens must equal
            // floor(rate * total_time / 1e7), whatever the step sizes.
            let burst = u64::MAX;
            let empty = BucketSnapshot { tokens: 0, remainder: 0, refill_age: 0 };
            let mut bucket = TokenBucket::restore(limit(rate, burst), &empty, Ticks(0)).unwrap();
            let start = 0u64;
            let mut now = 0u64;
            let mut total = 0u128;
            for gap in gaps {
                now += gap;
                total += u128::from(gap);
                bucket.admit(0, Ticks(now));
            }
            let expected = u128::from(start) + u128::from(rate) * total / u128::from(SECOND);
            let expected = u64::try_from(expected.min(u128::from(burst))).unwrap();
            prop_assert_eq!(bucket.tokens(), expected);
        }
    }
}
