//! What a channel asks of the VSP's protocol: the [`ChannelService`] trait.
//!
//! The channel owns the KMCL mechanics (state, ledgers, exactly-once completion, save/restore
//! calls); the service owns meaning (parsing requests, building responses and notifications,
//! the per-transaction context). `crate::service` is ferry's reference implementation; a VSP
//! author with a different protocol implements this trait and reuses the channel unchanged.
//!
//! Service methods run with the channel lock held, possibly at `DISPATCH_LEVEL`: they must not
//! wait, allocate or call the platform.

use core::fmt;

use crate::platform::Ticks;
use crate::status::NtStatus;

/// Largest refusal response (error message) a service may write; the channel keeps a buffer of
/// this size on the stack when it retires packets.
pub const MAX_REFUSAL_LEN: usize = 64;

/// Largest host→guest message a service may produce; the channel keeps a buffer of this size
/// on the stack while sending.
pub const MAX_SEND_LEN: usize = 256;

/// What the service did with an incoming packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition<R> {
    /// Complete now with the first `n` bytes of the response buffer.
    Respond(usize),
    /// Keep the packet outstanding; it is completed later through
    /// `Channel::complete_deferred`. `R` is what the service needs to answer it if it is
    /// retired first.
    Defer(R),
    /// Fail the packet (`VmbChannelPacketFail`), which stops the channel's queue. For input so
    /// hostile that serving the guest further is wrong; ordinary malformed requests get an
    /// error response instead.
    Fail,
}

/// Why a packet is answered without being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Retired because the channel suspended before it was completed.
    Cancelled,
    /// The incoming ledger was full (more outstanding packets than the transaction quota).
    Busy,
    /// Delivered in a state where KMCL should not deliver packets.
    NotRunning,
}

/// The VSP's own state for one host→guest transaction: what `EvtVmbChannelSavePacket` saves.
pub trait TransactionState: Sized {
    /// Why saved bytes were refused.
    type RestoreError: Copy + fmt::Debug + fmt::Display + Into<NtStatus>;

    /// Exact bytes [`TransactionState::save`] writes; `0` means nothing to save (the first
    /// SavePacket call then succeeds).
    fn saved_len(&self, now: Ticks) -> usize;

    /// Writes the saved form into `out`, which holds at least `saved_len` bytes; returns the
    /// bytes written.
    ///
    /// # Errors
    ///
    /// A status for KMCL if encoding failed (which an exact `saved_len` rules out).
    fn save(&self, now: Ticks, out: &mut [u8]) -> Result<usize, NtStatus>;

    /// Rebuilds the state from its saved form (empty when nothing was saved). `saved` is
    /// untrusted.
    ///
    /// # Errors
    ///
    /// Why the bytes were refused.
    fn restore(saved: &[u8], now: Ticks) -> Result<Self, Self::RestoreError>;
}

/// The protocol side of a channel.
pub trait ChannelService {
    /// What the incoming ledger keeps per deferred packet to answer it if it is retired.
    type Request: Copy;
    /// The VSP's context per host→guest transaction.
    type Transaction: TransactionState;
    /// Why a guest's completion of a transaction was not what the service expected.
    type CompletionError: Copy + fmt::Debug + fmt::Display;

    /// Handles one incoming packet (`payload` is hostile), writing any response into
    /// `response`.
    fn handle_packet(
        &mut self,
        payload: &[u8],
        response: &mut [u8],
        now: Ticks,
    ) -> Disposition<Self::Request>;

    /// Writes the response for a packet answered without being served and returns its length
    /// (at most `response.len()`). `request` is `Some` for a deferred packet being retired and
    /// `None` when the packet was never handed to [`ChannelService::handle_packet`] (then
    /// `payload` is available to echo identifiers from).
    fn refusal(
        &self,
        request: Option<Self::Request>,
        payload: &[u8],
        reason: Refusal,
        response: &mut [u8],
    ) -> usize;

    /// The next host→guest message waiting to be sent, written into `out`, with its context.
    /// Called only when the channel can send and has room for one more transaction.
    fn next_send(&mut self, out: &mut [u8], now: Ticks) -> Option<(Self::Transaction, usize)>;

    /// A send failed; the transaction was never in flight.
    fn send_failed(&mut self, transaction: Self::Transaction, status: NtStatus);

    /// The guest completed `transaction` with `status` and `completion` (hostile).
    ///
    /// # Errors
    ///
    /// The completion did not match the transaction; the transaction is released regardless.
    fn transaction_completed(
        &mut self,
        transaction: Self::Transaction,
        status: NtStatus,
        completion: &[u8],
    ) -> Result<(), Self::CompletionError>;

    /// A transaction was released without completion: the guest is gone.
    fn transaction_retired(&mut self, transaction: Self::Transaction);

    /// A transaction was restored onto this channel from saved state.
    fn transaction_restored(&mut self, transaction: &Self::Transaction);

    /// The identity of `transaction` among the channel's transactions in flight: two with the
    /// same `Some` identity are one transaction (a RestorePacket repeated for one saved
    /// packet, which the channel then refuses instead of keeping a copy the guest can never
    /// complete). `None`: no identity known; such a transaction is never a duplicate. The
    /// answer must depend on the transaction alone and be unique among distinct transactions
    /// (a sequence number, not a hash). The channel asks once per send or restore and keeps
    /// the answer in the ledger's index, so duplicates are found in constant expected time.
    /// The default knows no identity.
    fn transaction_identity(&self, transaction: &Self::Transaction) -> Option<u64> {
        let _ = transaction;
        None
    }

    /// The guest closed the channel: forget its session.
    fn reset_session(&mut self);
}
