//! A token-bucket rate limiter in integer bytes and 100 ns ticks, free of overflow for every
//! input.
//!
//! The bucket holds up to `burst_bytes` tokens (one token = one byte) and gains
//! `bytes_per_second` tokens per second. A frame passes when the bucket holds at least its
//! length in tokens, which it then spends; a frame that does not pass spends nothing. Refill
//! happens lazily, on each [`TokenBucket::admit`] that sees the clock advanced.
//!
//! Arithmetic: the bucket counts **credit** in byte-ticks, `tokens * 10^7 + remainder`, the
//! remainder being the fraction of a token below one byte (so frequent small refills lose
//! nothing). In those units the refill for `elapsed` ticks is exactly `elapsed * rate` and a
//! frame costs `length * 10^7`: no division on the classify path. The credit is a `u128`:
//! at most `burst * 10^7 < 2^88`, and `elapsed * rate` of two `u64` is below `2^128`, so the
//! refill is one widening multiply, a saturating add and a cap at the burst — whatever the
//! gap (a clock jump simply fills the bucket). Whole tokens and the remainder are recovered
//! by division only when saving or inspecting the bucket.
//!
//! A clock that goes backwards is treated as no time passing.

use super::types::RateLimit;
use crate::platform::Ticks;

const TICKS_PER_SECOND: u64 = Ticks::PER_SECOND;
/// [`TICKS_PER_SECOND`] as a credit multiplier.
const CREDIT_PER_TOKEN: u128 = TICKS_PER_SECOND as u128;

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
    /// Tokens in byte-ticks: whole tokens times 10^7 plus the fraction of the next one. At most
    /// [`capacity`]`(limit)` while limited.
    credit: u128,
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
            credit: capacity(limit),
            last_refill: Ticks(0),
        }
    }

    /// The configured limit.
    #[must_use]
    #[inline]
    pub const fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Whole tokens in the bucket as of the last refill.
    #[must_use]
    pub const fn tokens(&self) -> u64 {
        split_credit(self.credit).0
    }

    /// Decides whether a frame of `length` bytes passes at `now`, spending its tokens if so.
    #[inline(always)]
    pub fn admit(&mut self, length: u32, now: Ticks) -> bool {
        if self.limit.is_unlimited() {
            return true;
        }
        self.refill(now);
        // Exact: a `u32` times 10^7 is below 2^56.
        let cost = u128::from(length).wrapping_mul(CREDIT_PER_TOKEN);
        match self.credit.checked_sub(cost) {
            Some(left) => {
                self.credit = left;
                true
            }
            None => false,
        }
    }

    /// The bucket's state relative to `now`, for saving.
    #[must_use]
    pub const fn snapshot(&self, now: Ticks) -> BucketSnapshot {
        let (tokens, remainder) = split_credit(self.credit);
        BucketSnapshot {
            tokens,
            remainder,
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
            // Below 2^88: tokens < 2^64 times 10^7 < 2^24, plus a remainder below 10^7.
            credit: (snapshot.tokens as u128)
                .saturating_mul(CREDIT_PER_TOKEN)
                .saturating_add(snapshot.remainder as u128),
            last_refill: Ticks(now.0.saturating_sub(snapshot.refill_age)),
        })
    }

    /// Adds the credit earned since the last refill, capped at the burst. Nothing to do when
    /// the clock has not advanced (frames in the same tick share one refill).
    #[inline(always)]
    fn refill(&mut self, now: Ticks) {
        let elapsed = now.saturating_since(self.last_refill);
        if elapsed == 0 {
            return;
        }
        self.last_refill = now;
        // Exact: the product of two `u64` is below 2^128.
        let earned = u128::from(self.limit.bytes_per_second).wrapping_mul(u128::from(elapsed));
        let credit = self.credit.saturating_add(earned);
        let capacity = capacity(self.limit);
        self.credit = if credit < capacity { credit } else { capacity };
    }
}

/// A full bucket's credit: `burst * 10^7` (below 2^88, so exact).
#[inline]
const fn capacity(limit: RateLimit) -> u128 {
    (limit.burst_bytes as u128).saturating_mul(CREDIT_PER_TOKEN)
}

/// Whole tokens and the fraction of the next one. Credit never exceeds `u64::MAX * 10^7 +
/// (10^7 - 1)` (a capacity, or a restored snapshot), so the whole part fits a `u64`.
const fn split_credit(credit: u128) -> (u64, u64) {
    let whole = match credit.checked_div(CREDIT_PER_TOKEN) {
        Some(whole) if whole <= u64::MAX as u128 => whole as u64,
        _ => u64::MAX,
    };
    let fraction = match credit.checked_rem(CREDIT_PER_TOKEN) {
        // Below 10^7.
        Some(fraction) => fraction as u64,
        None => 0,
    };
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
    fn huge_rates_refill_exactly() {
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

    /// The bucket as whole tokens plus a remainder, refilled by division: the textbook
    /// arithmetic the credit representation must agree with, step for step.
    struct ReferenceBucket {
        limit: RateLimit,
        tokens: u64,
        remainder: u64,
        last_refill: u64,
    }

    impl ReferenceBucket {
        fn admit(&mut self, length: u32, now: u64) -> bool {
            if self.limit.bytes_per_second == 0 {
                return true;
            }
            let elapsed = now.saturating_sub(self.last_refill);
            if elapsed > 0 {
                self.last_refill = now;
                let scaled = u128::from(self.limit.bytes_per_second) * u128::from(elapsed)
                    + u128::from(self.remainder);
                let whole = scaled / u128::from(SECOND);
                let tokens = u128::from(self.tokens) + whole;
                if tokens < u128::from(self.limit.burst_bytes) {
                    self.tokens = u64::try_from(tokens).unwrap();
                    self.remainder = u64::try_from(scaled % u128::from(SECOND)).unwrap();
                } else {
                    self.tokens = self.limit.burst_bytes;
                    self.remainder = 0;
                }
            }
            match self.tokens.checked_sub(u64::from(length)) {
                Some(left) => {
                    self.tokens = left;
                    true
                }
                None => false,
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_whole_tokens_and_remainder_arithmetic(
            rate in prop_oneof![1..10_000_000u64, any::<u64>()],
            burst in prop_oneof![1..100_000u64, 1..=u64::MAX],
            start in (any::<u64>(), 0..SECOND, 0..(4 * SECOND)),
            steps in proptest::collection::vec((0..(3 * SECOND), 0..200_000u32), 1..40),
        ) {
            let limit = limit(rate, burst);
            let (tokens, remainder, refill_age) = start;
            let snapshot = BucketSnapshot { tokens: tokens % burst.saturating_add(1), remainder, refill_age };
            let mut bucket = TokenBucket::restore(limit, &snapshot, Ticks(4 * SECOND)).unwrap();
            let mut reference = ReferenceBucket {
                limit,
                tokens: snapshot.tokens,
                remainder,
                last_refill: 4 * SECOND - refill_age,
            };
            let mut now = 4 * SECOND;
            for (gap, length) in steps {
                // Shrink some gaps to zero or a few ticks: same-tick frames and tiny refills.
                now += gap >> (gap % 40);
                prop_assert_eq!(bucket.admit(length, Ticks(now)), reference.admit(length, now));
                let snapshot = bucket.snapshot(Ticks(now));
                prop_assert_eq!(
                    (snapshot.tokens, snapshot.remainder),
                    (reference.tokens, reference.remainder)
                );
            }
        }

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
