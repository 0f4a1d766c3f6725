//! The sending end of a transfer (an uploader, or the relay delivering to a reader).

use bytes::Bytes;
use std::collections::VecDeque;

use crate::frame::{encode_frame, FrameDecoder};
use crate::message::{Finish, Hash, Offer, Refusal, Reply, Request};
use crate::ProtoError;

/// What the sender's application must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderEvent {
    /// Send raw bytes `[offset, size)`, calling [`Sender::data_sent`], then [`Sender::finish`].
    Accepted { offset: u64 },
    /// The receiver already holds the instance: done, nothing sent.
    Have { hash: Hash },
    /// The receiver holds `[0, durable)` durably.
    Checkpoint { durable: u64 },
    /// Acknowledged: verified against `hash` and durable at the receiver.
    Stored { hash: Hash },
    /// Refused, with the receiver's reason.
    Refused(Refusal),
    /// Pause sending data until [`SenderEvent::Resumed`] (something urgent needs the link).
    Held,
    /// Continue sending.
    Resumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitReply,
    Sending { next: u64 },
    AwaitStored,
    Done,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::AwaitReply => "waiting for the receiver's answer to the offer",
            State::Sending { .. } => "sending data",
            State::AwaitStored => "waiting for the acknowledgement",
            State::Done => "done",
        }
    }
}

/// Sender state machine of one transfer stream.
#[derive(Debug)]
pub struct Sender {
    offer: Offer,
    state: State,
    decoder: FrameDecoder,
    acknowledged: u64,
    held: bool,
    events: VecDeque<SenderEvent>,
    transmit: VecDeque<Bytes>,
}

impl Sender {
    /// Start a transfer; the offer frame is queued for transmission.
    pub fn new(offer: Offer) -> Self {
        let frame = encode_frame(&Request::Offer(offer.clone()));
        Self {
            offer,
            state: State::AwaitReply,
            decoder: FrameDecoder::new(),
            acknowledged: 0,
            held: false,
            events: VecDeque::new(),
            transmit: VecDeque::from([frame]),
        }
    }

    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Bytes the receiver holds durably, as far as it told us.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged
    }

    /// The application wrote `n` raw bytes to the stream.
    pub fn data_sent(&mut self, n: u64) -> Result<(), ProtoError> {
        match self.state {
            State::Sending { next } => {
                let next = next + n;
                if next > self.offer.size {
                    return Err(ProtoError::LengthMismatch {
                        expected: self.offer.size,
                        got: next,
                    });
                }
                self.state = State::Sending { next };
                Ok(())
            }
            _ => Err(ProtoError::Misuse("data_sent outside the sending state")),
        }
    }

    /// All bytes were sent; they hash to `hash`.
    pub fn finish(&mut self, hash: Hash) -> Result<(), ProtoError> {
        match self.state {
            State::Sending { next } if next == self.offer.size => {
                self.transmit.push_back(encode_frame(&Finish { hash }));
                self.state = State::AwaitStored;
                Ok(())
            }
            State::Sending { next } => Err(ProtoError::LengthMismatch {
                expected: self.offer.size,
                got: next,
            }),
            _ => Err(ProtoError::Misuse("finish outside the sending state")),
        }
    }

    /// Feed bytes read from the stream (the receiver's replies).
    pub fn handle_input(&mut self, chunk: Bytes) -> Result<(), ProtoError> {
        self.decoder.push(chunk);
        while let Some(reply) = self.decoder.next_frame::<Reply>("reply")? {
            self.on_reply(reply)?;
        }
        Ok(())
    }

    fn on_reply(&mut self, reply: Reply) -> Result<(), ProtoError> {
        let unexpected = |what, state: State| ProtoError::Unexpected {
            what,
            state: state.name(),
        };
        match (reply, self.state) {
            (Reply::Refused(r), State::Done) => {
                // A refusal after Have/Stored would contradict an acknowledgement.
                let _ = r;
                return Err(unexpected("Refused", self.state));
            }
            (Reply::Refused(r), _) => {
                self.state = State::Done;
                self.events.push_back(SenderEvent::Refused(r));
            }
            (Reply::Accept { offset }, State::AwaitReply) => {
                if offset > self.offer.size {
                    return Err(ProtoError::LengthMismatch {
                        expected: self.offer.size,
                        got: offset,
                    });
                }
                self.acknowledged = offset;
                self.state = State::Sending { next: offset };
                self.events.push_back(SenderEvent::Accepted { offset });
            }
            (Reply::Have { hash }, State::AwaitReply) => {
                self.acknowledged = self.offer.size;
                self.state = State::Done;
                self.events.push_back(SenderEvent::Have { hash });
            }
            (Reply::Checkpoint { durable }, State::Sending { .. } | State::AwaitStored) => {
                if durable > self.offer.size {
                    return Err(ProtoError::LengthMismatch {
                        expected: self.offer.size,
                        got: durable,
                    });
                }
                if durable > self.acknowledged {
                    self.acknowledged = durable;
                    self.events.push_back(SenderEvent::Checkpoint { durable });
                }
            }
            (Reply::Stored { hash }, State::AwaitStored) => {
                self.acknowledged = self.offer.size;
                self.state = State::Done;
                self.events.push_back(SenderEvent::Stored { hash });
            }
            (Reply::Hold, State::Done) => {}
            (Reply::Hold, _) => {
                if !self.held {
                    self.held = true;
                    self.events.push_back(SenderEvent::Held);
                }
            }
            (Reply::Resume, _) => {
                if self.held {
                    self.held = false;
                    if self.state != State::Done {
                        self.events.push_back(SenderEvent::Resumed);
                    }
                }
            }
            (Reply::Accept { .. }, s) => return Err(unexpected("Accept", s)),
            (Reply::Have { .. }, s) => return Err(unexpected("Have", s)),
            (Reply::Checkpoint { .. }, s) => return Err(unexpected("Checkpoint", s)),
            (Reply::Stored { .. }, s) => return Err(unexpected("Stored", s)),
        }
        Ok(())
    }

    /// The receiver finished its side of the stream.
    pub fn handle_end(&mut self) -> Result<(), ProtoError> {
        match self.state {
            State::Done => Ok(()),
            s => Err(ProtoError::UnexpectedEnd { state: s.name() }),
        }
    }

    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// Raw bytes still to send, while sending.
    pub fn remaining(&self) -> u64 {
        match self.state {
            State::Sending { next } => self.offer.size - next,
            _ => 0,
        }
    }

    /// The receiver asked us to pause sending data ([`Reply::Hold`]); control frames (Finish)
    /// may still be sent.
    pub fn is_held(&self) -> bool {
        self.held
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}
