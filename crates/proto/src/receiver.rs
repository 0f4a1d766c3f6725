//! The receiving end of a transfer (the relay for uploads, a reader for deliveries).

use bytes::Bytes;
use std::collections::VecDeque;

use crate::frame::{encode_frame, FrameDecoder, MAX_FRAME_LEN};
use crate::message::{Finish, Hash, Offer, Refusal, Reply};
use crate::ProtoError;

/// What the receiver's application must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverEvent {
    /// Bytes `[offset, offset + bytes.len())` of the instance.
    Data { offset: u64, bytes: Bytes },
    /// Every byte arrived; the sender says they hash to this. The application verifies, makes the
    /// instance durable, then calls [`Receiver::stored`] (or [`Receiver::refuse`]).
    Finish(Hash),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitDecision,
    Data { next: u64 },
    AwaitFinish,
    AwaitVerdict,
    Done,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::AwaitDecision => "waiting for the receiver's decision",
            State::Data { .. } => "receiving data",
            State::AwaitFinish => "waiting for Finish",
            State::AwaitVerdict => "verifying",
            State::Done => "done",
        }
    }
}

/// Receiver state machine of one transfer stream.
///
/// Created from the [`Offer`] the driver decoded as the stream's first frame, together with the
/// decoder holding whatever followed it.
#[derive(Debug)]
pub struct Receiver {
    offer: Offer,
    state: State,
    decoder: FrameDecoder,
    events: VecDeque<ReceiverEvent>,
    transmit: VecDeque<Bytes>,
    held: bool,
}

impl Receiver {
    /// Start receiving `offer`; refuses offers above `max_size` right away.
    pub fn new(offer: Offer, decoder: FrameDecoder, max_size: u64) -> Result<Self, ProtoError> {
        if offer.size > max_size {
            return Err(ProtoError::TooLarge {
                size: offer.size,
                max: max_size,
            });
        }
        Ok(Self {
            offer,
            state: State::AwaitDecision,
            decoder,
            events: VecDeque::new(),
            transmit: VecDeque::new(),
            held: false,
        })
    }

    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Ask for the bytes from `offset` on (what is already held durably).
    pub fn accept(&mut self, offset: u64) -> Result<(), ProtoError> {
        if self.state != State::AwaitDecision {
            return Err(ProtoError::Misuse("accept after the decision"));
        }
        if offset > self.offer.size {
            return Err(ProtoError::Misuse("accept offset beyond the offered size"));
        }
        self.reply(&Reply::Accept { offset });
        self.state = if offset == self.offer.size {
            State::AwaitFinish
        } else {
            State::Data { next: offset }
        };
        // Whatever the sender sent early (it may not, but a chunk can hold more than one frame).
        if let Some(rest) = self.decoder.take_rest() {
            self.handle_input(rest)?;
        }
        Ok(())
    }

    /// The instance is already held, identical.
    pub fn have(&mut self, hash: Hash) -> Result<(), ProtoError> {
        if self.state != State::AwaitDecision {
            return Err(ProtoError::Misuse("have after the decision"));
        }
        self.reply(&Reply::Have { hash });
        self.state = State::Done;
        Ok(())
    }

    /// Refuse the transfer, at any point before it is stored.
    pub fn refuse(&mut self, refusal: Refusal) {
        if self.state != State::Done {
            self.reply(&Reply::Refused(refusal));
            self.state = State::Done;
        }
    }

    /// Tell the sender that `[0, durable)` is durable.
    pub fn checkpoint(&mut self, durable: u64) {
        if matches!(self.state, State::Data { .. } | State::AwaitFinish) {
            self.reply(&Reply::Checkpoint { durable });
        }
    }

    /// Ask the sender to pause (`hold = true`) or continue sending data. Only before or while
    /// data is expected; repeated calls with the same value send nothing.
    pub fn hold(&mut self, hold: bool) {
        if matches!(self.state, State::AwaitDecision | State::Data { .. }) && self.held != hold {
            self.held = hold;
            self.reply(&if hold { Reply::Hold } else { Reply::Resume });
        }
    }

    /// Whether the sender was asked to pause.
    pub fn is_holding(&self) -> bool {
        self.held
    }

    /// Acknowledge: verified and durable.
    pub fn stored(&mut self, hash: Hash) -> Result<(), ProtoError> {
        if self.state != State::AwaitVerdict {
            return Err(ProtoError::Misuse("stored before Finish"));
        }
        self.reply(&Reply::Stored { hash });
        self.state = State::Done;
        Ok(())
    }

    /// Feed bytes read from the stream.
    pub fn handle_input(&mut self, mut chunk: Bytes) -> Result<(), ProtoError> {
        loop {
            match self.state {
                State::AwaitDecision => {
                    self.decoder.push(chunk);
                    if self.decoder.buffered() > (MAX_FRAME_LEN as usize) * 2 {
                        return Err(ProtoError::Unexpected {
                            what: "data",
                            state: self.state.name(),
                        });
                    }
                    return Ok(());
                }
                State::Data { next } => {
                    if chunk.is_empty() {
                        return Ok(());
                    }
                    let want = self.offer.size - next;
                    let take = (chunk.len() as u64).min(want) as usize;
                    let bytes = chunk.split_to(take);
                    let next = next + take as u64;
                    self.events.push_back(ReceiverEvent::Data {
                        offset: next - take as u64,
                        bytes,
                    });
                    self.state = if next == self.offer.size {
                        State::AwaitFinish
                    } else {
                        State::Data { next }
                    };
                }
                State::AwaitFinish => {
                    self.decoder.push(chunk);
                    return match self.decoder.next_frame::<Finish>("finish")? {
                        Some(f) => {
                            self.state = State::AwaitVerdict;
                            self.events.push_back(ReceiverEvent::Finish(f.hash));
                            self.expect_nothing_more()
                        }
                        None => Ok(()),
                    };
                }
                State::AwaitVerdict | State::Done => {
                    self.decoder.push(chunk);
                    return self.expect_nothing_more();
                }
            }
        }
    }

    fn expect_nothing_more(&mut self) -> Result<(), ProtoError> {
        if self.decoder.buffered() > 0 {
            return Err(ProtoError::Unexpected {
                what: "bytes after Finish",
                state: self.state.name(),
            });
        }
        Ok(())
    }

    /// The sender finished its side of the stream.
    pub fn handle_end(&mut self) -> Result<(), ProtoError> {
        match self.state {
            State::AwaitVerdict | State::Done => Ok(()),
            s => Err(ProtoError::UnexpectedEnd { state: s.name() }),
        }
    }

    pub fn poll_event(&mut self) -> Option<ReceiverEvent> {
        self.events.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// Nothing more will be sent or received on this transfer.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Next byte offset expected, while receiving data.
    pub fn next_offset(&self) -> Option<u64> {
        match self.state {
            State::Data { next } => Some(next),
            State::AwaitFinish | State::AwaitVerdict => Some(self.offer.size),
            _ => None,
        }
    }

    fn reply(&mut self, r: &Reply) {
        self.transmit.push_back(encode_frame(r));
    }
}
