//! The version-negotiation rule: the highest version both sides support, and the features
//! both want.

use super::error::ErrorCode;
use super::header::{MAX_SUPPORTED_VERSION, MIN_SUPPORTED_VERSION};
use super::message::{NegotiateRequest, NegotiateResponse};

/// Feature bits the host can grant. Protocol v1 defines none; a guest may offer any bits and
/// is granted only the ones listed here.
pub const SUPPORTED_FEATURES: u32 = 0;

/// The answer to a well-formed `NegotiateRequest`: the highest version in both the guest's
/// offer and the host's supported range, with the offered features the host supports.
///
/// # Errors
///
/// [`ErrorCode::UnsupportedVersion`] when the ranges do not overlap (the error response tells
/// the guest the host's range); [`ErrorCode::InvalidField`] for an offer the parser would have
/// rejected (`min_version` 0 or above `max_version`).
pub const fn negotiate(offer: &NegotiateRequest) -> Result<NegotiateResponse, ErrorCode> {
    if offer.min_version == 0 || offer.min_version > offer.max_version {
        return Err(ErrorCode::InvalidField);
    }
    let highest = if offer.max_version < MAX_SUPPORTED_VERSION {
        offer.max_version
    } else {
        MAX_SUPPORTED_VERSION
    };
    if highest < offer.min_version || highest < MIN_SUPPORTED_VERSION {
        return Err(ErrorCode::UnsupportedVersion);
    }
    Ok(NegotiateResponse {
        version: highest,
        features: offer.features & SUPPORTED_FEATURES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(min_version: u16, max_version: u16) -> NegotiateRequest {
        NegotiateRequest {
            min_version,
            max_version,
            features: u32::MAX,
        }
    }

    #[test]
    fn picks_highest_common_version_and_grants_only_supported_features() {
        let answer = negotiate(&offer(1, 7));
        assert_eq!(
            answer,
            Ok(NegotiateResponse {
                version: MAX_SUPPORTED_VERSION,
                features: SUPPORTED_FEATURES,
            })
        );
    }

    #[test]
    fn disjoint_ranges_are_unsupported() {
        assert_eq!(negotiate(&offer(2, 3)), Err(ErrorCode::UnsupportedVersion));
    }

    #[test]
    fn malformed_offers_are_invalid() {
        assert_eq!(negotiate(&offer(0, 1)), Err(ErrorCode::InvalidField));
        assert_eq!(negotiate(&offer(2, 1)), Err(ErrorCode::InvalidField));
    }
}
