//! Typed DIMSE-C messages (PS3.7 §9.3): what a command set means.
//!
//! [`Message::encode`] writes a command set (Implicit VR Little Endian, group length computed);
//! [`Message::decode`] reads one, tolerating unknown elements and reporting a missing
//! required field as [`CommandError::Missing`].

use crate::command_set::{element as el, CommandSet, DATA_SET_PRESENT, NO_DATA_SET};
use crate::error::CommandError;
use crate::status::Status;

/// Command Field values (0000,0100).
pub mod command_field {
    /// C-STORE-RQ.
    pub const C_STORE_RQ: u16 = 0x0001;
    /// C-STORE-RSP.
    pub const C_STORE_RSP: u16 = 0x8001;
    /// C-GET-RQ.
    pub const C_GET_RQ: u16 = 0x0010;
    /// C-GET-RSP.
    pub const C_GET_RSP: u16 = 0x8010;
    /// C-FIND-RQ.
    pub const C_FIND_RQ: u16 = 0x0020;
    /// C-FIND-RSP.
    pub const C_FIND_RSP: u16 = 0x8020;
    /// C-MOVE-RQ.
    pub const C_MOVE_RQ: u16 = 0x0021;
    /// C-MOVE-RSP.
    pub const C_MOVE_RSP: u16 = 0x8021;
    /// C-ECHO-RQ.
    pub const C_ECHO_RQ: u16 = 0x0030;
    /// C-ECHO-RSP.
    pub const C_ECHO_RSP: u16 = 0x8030;
    /// C-CANCEL-RQ.
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}
use command_field as cf;

/// Priority (0000,0700).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// 0x0002.
    Low,
    /// 0x0000.
    #[default]
    Medium,
    /// 0x0001.
    High,
}

impl Priority {
    fn code(self) -> u16 {
        match self {
            Priority::Low => 2,
            Priority::Medium => 0,
            Priority::High => 1,
        }
    }

    fn from_code(value: u16) -> Result<Self, CommandError> {
        match value {
            0 => Ok(Priority::Medium),
            1 => Ok(Priority::High),
            2 => Ok(Priority::Low),
            _ => Err(CommandError::InvalidValue {
                element: el::PRIORITY,
                value,
            }),
        }
    }
}

/// C-ECHO-RQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoRq {
    /// Message ID.
    pub message_id: u16,
    /// Affected SOP Class UID (Verification).
    pub sop_class: String,
}

/// C-ECHO-RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoRsp {
    /// Message ID Being Responded To.
    pub responding_to: u16,
    /// Affected SOP Class UID (optional in a response).
    pub sop_class: Option<String>,
    /// Status.
    pub status: Status,
}

/// C-STORE-RQ (a data set follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRq {
    /// Message ID.
    pub message_id: u16,
    /// Affected SOP Class UID.
    pub sop_class: String,
    /// Affected SOP Instance UID.
    pub sop_instance: String,
    /// Priority.
    pub priority: Priority,
    /// Move Originator Application Entity Title, when a C-MOVE caused this store.
    pub move_originator_ae: Option<String>,
    /// Move Originator Message ID, when a C-MOVE caused this store.
    pub move_originator_message_id: Option<u16>,
}

/// C-STORE-RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRsp {
    /// Message ID Being Responded To.
    pub responding_to: u16,
    /// Affected SOP Class UID.
    pub sop_class: Option<String>,
    /// Affected SOP Instance UID.
    pub sop_instance: Option<String>,
    /// Status.
    pub status: Status,
    /// Error Comment (0000,0902), at most 64 characters.
    pub error_comment: Option<String>,
}

/// C-FIND-RQ (an identifier follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindRq {
    /// Message ID.
    pub message_id: u16,
    /// Affected SOP Class UID (the information model).
    pub sop_class: String,
    /// Priority.
    pub priority: Priority,
}

/// C-FIND-RSP (pending responses carry an identifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindRsp {
    /// Message ID Being Responded To.
    pub responding_to: u16,
    /// Affected SOP Class UID.
    pub sop_class: Option<String>,
    /// Status.
    pub status: Status,
    /// Does an identifier (data set) follow?
    pub has_identifier: bool,
    /// Error Comment.
    pub error_comment: Option<String>,
}

/// C-GET-RQ (an identifier follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRq {
    /// Message ID.
    pub message_id: u16,
    /// Affected SOP Class UID (the information model).
    pub sop_class: String,
    /// Priority.
    pub priority: Priority,
}

/// C-MOVE-RQ (an identifier follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveRq {
    /// Message ID.
    pub message_id: u16,
    /// Affected SOP Class UID (the information model).
    pub sop_class: String,
    /// Priority.
    pub priority: Priority,
    /// Move Destination: the AE title to send the instances to.
    pub destination: String,
}

/// Sub-operation counts of C-GET and C-MOVE responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubOperations {
    /// Number of Remaining Sub-operations.
    pub remaining: Option<u16>,
    /// Number of Completed Sub-operations.
    pub completed: Option<u16>,
    /// Number of Failed Sub-operations.
    pub failed: Option<u16>,
    /// Number of Warning Sub-operations.
    pub warning: Option<u16>,
}

impl SubOperations {
    /// The counts of a pending response: every count, remaining included (PS3.4 C.4.2.3.1,
    /// C.4.3.3.1: Number of Remaining Sub-operations is required while pending).
    pub fn pending(remaining: u16, completed: u16, failed: u16, warning: u16) -> Self {
        SubOperations {
            remaining: Some(remaining),
            completed: Some(completed),
            failed: Some(failed),
            warning: Some(warning),
        }
    }

    /// The counts of a final response: completed, failed and warning; remaining only for a
    /// Cancel (the sub-operations that were not started), absent otherwise.
    pub fn final_counts(
        status: Status,
        remaining: u16,
        completed: u16,
        failed: u16,
        warning: u16,
    ) -> Self {
        SubOperations {
            remaining: (status == Status::CANCEL).then_some(remaining),
            completed: Some(completed),
            failed: Some(failed),
            warning: Some(warning),
        }
    }
}

/// C-GET-RSP or C-MOVE-RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveRsp {
    /// Message ID Being Responded To.
    pub responding_to: u16,
    /// Affected SOP Class UID.
    pub sop_class: Option<String>,
    /// Status.
    pub status: Status,
    /// Sub-operation counts.
    pub counts: SubOperations,
    /// Does an identifier follow (Failed SOP Instance UID List)?
    pub has_identifier: bool,
    /// Error Comment.
    pub error_comment: Option<String>,
}

/// C-CANCEL-RQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRq {
    /// Message ID Being Responded To: the request to cancel.
    pub responding_to: u16,
}

/// A DIMSE-C message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// C-ECHO-RQ.
    EchoRq(EchoRq),
    /// C-ECHO-RSP.
    EchoRsp(EchoRsp),
    /// C-STORE-RQ.
    StoreRq(StoreRq),
    /// C-STORE-RSP.
    StoreRsp(StoreRsp),
    /// C-FIND-RQ.
    FindRq(FindRq),
    /// C-FIND-RSP.
    FindRsp(FindRsp),
    /// C-GET-RQ.
    GetRq(GetRq),
    /// C-GET-RSP.
    GetRsp(RetrieveRsp),
    /// C-MOVE-RQ.
    MoveRq(MoveRq),
    /// C-MOVE-RSP.
    MoveRsp(RetrieveRsp),
    /// C-CANCEL-RQ.
    CancelRq(CancelRq),
}

impl Message {
    /// Its Command Field.
    pub fn command_field(&self) -> u16 {
        match self {
            Message::EchoRq(_) => cf::C_ECHO_RQ,
            Message::EchoRsp(_) => cf::C_ECHO_RSP,
            Message::StoreRq(_) => cf::C_STORE_RQ,
            Message::StoreRsp(_) => cf::C_STORE_RSP,
            Message::FindRq(_) => cf::C_FIND_RQ,
            Message::FindRsp(_) => cf::C_FIND_RSP,
            Message::GetRq(_) => cf::C_GET_RQ,
            Message::GetRsp(_) => cf::C_GET_RSP,
            Message::MoveRq(_) => cf::C_MOVE_RQ,
            Message::MoveRsp(_) => cf::C_MOVE_RSP,
            Message::CancelRq(_) => cf::C_CANCEL_RQ,
        }
    }

    /// Its name, e.g. "C-STORE-RQ".
    pub fn name(&self) -> &'static str {
        command_name(self.command_field())
    }

    /// Does a data set follow this command?
    pub fn has_data_set(&self) -> bool {
        match self {
            Message::StoreRq(_) | Message::FindRq(_) | Message::GetRq(_) | Message::MoveRq(_) => {
                true
            }
            Message::FindRsp(r) => r.has_identifier,
            Message::GetRsp(r) | Message::MoveRsp(r) => r.has_identifier,
            Message::EchoRq(_)
            | Message::EchoRsp(_)
            | Message::StoreRsp(_)
            | Message::CancelRq(_) => false,
        }
    }

    /// The Message ID of a request.
    pub fn message_id(&self) -> Option<u16> {
        match self {
            Message::EchoRq(m) => Some(m.message_id),
            Message::StoreRq(m) => Some(m.message_id),
            Message::FindRq(m) => Some(m.message_id),
            Message::GetRq(m) => Some(m.message_id),
            Message::MoveRq(m) => Some(m.message_id),
            _ => None,
        }
    }

    /// Encode as a command set.
    pub fn encode(&self) -> Vec<u8> {
        let mut c = CommandSet::new();
        c.put_us(el::COMMAND_FIELD, self.command_field());
        c.put_us(
            el::COMMAND_DATA_SET_TYPE,
            if self.has_data_set() {
                DATA_SET_PRESENT
            } else {
                NO_DATA_SET
            },
        );
        let response = |c: &mut CommandSet, to: u16, class: &Option<String>, status: Status| {
            c.put_us(el::MESSAGE_ID_BEING_RESPONDED_TO, to);
            if let Some(class) = class {
                c.put_uid(el::AFFECTED_SOP_CLASS_UID, class);
            }
            c.put_us(el::STATUS, status.0);
        };
        let comment = |c: &mut CommandSet, comment: &Option<String>| {
            if let Some(text) = comment {
                c.put_text(el::ERROR_COMMENT, &truncate(text, 64));
            }
        };
        match self {
            Message::EchoRq(m) => {
                c.put_us(el::MESSAGE_ID, m.message_id);
                c.put_uid(el::AFFECTED_SOP_CLASS_UID, &m.sop_class);
            }
            Message::EchoRsp(m) => response(&mut c, m.responding_to, &m.sop_class, m.status),
            Message::StoreRq(m) => {
                c.put_us(el::MESSAGE_ID, m.message_id);
                c.put_uid(el::AFFECTED_SOP_CLASS_UID, &m.sop_class);
                c.put_uid(el::AFFECTED_SOP_INSTANCE_UID, &m.sop_instance);
                c.put_us(el::PRIORITY, m.priority.code());
                if let Some(ae) = &m.move_originator_ae {
                    c.put_text(el::MOVE_ORIGINATOR_AE_TITLE, ae);
                }
                if let Some(id) = m.move_originator_message_id {
                    c.put_us(el::MOVE_ORIGINATOR_MESSAGE_ID, id);
                }
            }
            Message::StoreRsp(m) => {
                response(&mut c, m.responding_to, &m.sop_class, m.status);
                if let Some(uid) = &m.sop_instance {
                    c.put_uid(el::AFFECTED_SOP_INSTANCE_UID, uid);
                }
                comment(&mut c, &m.error_comment);
            }
            Message::FindRq(m) => {
                c.put_us(el::MESSAGE_ID, m.message_id);
                c.put_uid(el::AFFECTED_SOP_CLASS_UID, &m.sop_class);
                c.put_us(el::PRIORITY, m.priority.code());
            }
            Message::FindRsp(m) => {
                response(&mut c, m.responding_to, &m.sop_class, m.status);
                comment(&mut c, &m.error_comment);
            }
            Message::GetRq(m) => {
                c.put_us(el::MESSAGE_ID, m.message_id);
                c.put_uid(el::AFFECTED_SOP_CLASS_UID, &m.sop_class);
                c.put_us(el::PRIORITY, m.priority.code());
            }
            Message::MoveRq(m) => {
                c.put_us(el::MESSAGE_ID, m.message_id);
                c.put_uid(el::AFFECTED_SOP_CLASS_UID, &m.sop_class);
                c.put_us(el::PRIORITY, m.priority.code());
                c.put_text(el::MOVE_DESTINATION, &m.destination);
            }
            Message::GetRsp(m) | Message::MoveRsp(m) => {
                response(&mut c, m.responding_to, &m.sop_class, m.status);
                let counts = [
                    (el::REMAINING_SUBOPERATIONS, m.counts.remaining),
                    (el::COMPLETED_SUBOPERATIONS, m.counts.completed),
                    (el::FAILED_SUBOPERATIONS, m.counts.failed),
                    (el::WARNING_SUBOPERATIONS, m.counts.warning),
                ];
                for (element, value) in counts {
                    if let Some(v) = value {
                        c.put_us(element, v);
                    }
                }
                comment(&mut c, &m.error_comment);
            }
            Message::CancelRq(m) => c.put_us(el::MESSAGE_ID_BEING_RESPONDED_TO, m.responding_to),
        }
        c.encode()
    }

    /// Decode a command set.
    pub fn decode(bytes: &[u8]) -> Result<Message, CommandError> {
        Message::from_command_set(&CommandSet::decode(bytes)?)
    }

    /// Interpret a decoded command set.
    pub fn from_command_set(c: &CommandSet) -> Result<Message, CommandError> {
        let field = c.us(el::COMMAND_FIELD)?.ok_or(CommandError::Missing {
            command: "command set",
            field: "Command Field (0000,0100)",
        })?;
        let name = command_name(field);
        let has_data = c
            .us(el::COMMAND_DATA_SET_TYPE)?
            .ok_or(CommandError::Missing {
                command: name,
                field: "Command Data Set Type (0000,0800)",
            })?
            != NO_DATA_SET;
        let need_us = |element: u16, field: &'static str| -> Result<u16, CommandError> {
            c.us(element)?.ok_or(CommandError::Missing {
                command: name,
                field,
            })
        };
        let need_text = |element: u16, field: &'static str| -> Result<String, CommandError> {
            c.text(element)?.ok_or(CommandError::Missing {
                command: name,
                field,
            })
        };
        let message_id = || need_us(el::MESSAGE_ID, "Message ID (0000,0110)");
        let responding_to = || {
            need_us(
                el::MESSAGE_ID_BEING_RESPONDED_TO,
                "Message ID Being Responded To (0000,0120)",
            )
        };
        let class = || {
            need_text(
                el::AFFECTED_SOP_CLASS_UID,
                "Affected SOP Class UID (0000,0002)",
            )
        };
        let status = || need_us(el::STATUS, "Status (0000,0900)").map(Status);
        let priority = || -> Result<Priority, CommandError> {
            c.us(el::PRIORITY)?
                .map(Priority::from_code)
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let counts = || -> Result<SubOperations, CommandError> {
            Ok(SubOperations {
                remaining: c.us(el::REMAINING_SUBOPERATIONS)?,
                completed: c.us(el::COMPLETED_SUBOPERATIONS)?,
                failed: c.us(el::FAILED_SUBOPERATIONS)?,
                warning: c.us(el::WARNING_SUBOPERATIONS)?,
            })
        };
        let retrieve_rsp = || -> Result<RetrieveRsp, CommandError> {
            Ok(RetrieveRsp {
                responding_to: responding_to()?,
                sop_class: c.text(el::AFFECTED_SOP_CLASS_UID)?,
                status: status()?,
                counts: counts()?,
                has_identifier: has_data,
                error_comment: c.text(el::ERROR_COMMENT)?,
            })
        };
        Ok(match field {
            cf::C_ECHO_RQ => Message::EchoRq(EchoRq {
                message_id: message_id()?,
                sop_class: class()?,
            }),
            cf::C_ECHO_RSP => Message::EchoRsp(EchoRsp {
                responding_to: responding_to()?,
                sop_class: c.text(el::AFFECTED_SOP_CLASS_UID)?,
                status: status()?,
            }),
            cf::C_STORE_RQ => Message::StoreRq(StoreRq {
                message_id: message_id()?,
                sop_class: class()?,
                sop_instance: need_text(
                    el::AFFECTED_SOP_INSTANCE_UID,
                    "Affected SOP Instance UID (0000,1000)",
                )?,
                priority: priority()?,
                move_originator_ae: c.text(el::MOVE_ORIGINATOR_AE_TITLE)?,
                move_originator_message_id: c.us(el::MOVE_ORIGINATOR_MESSAGE_ID)?,
            }),
            cf::C_STORE_RSP => Message::StoreRsp(StoreRsp {
                responding_to: responding_to()?,
                sop_class: c.text(el::AFFECTED_SOP_CLASS_UID)?,
                sop_instance: c.text(el::AFFECTED_SOP_INSTANCE_UID)?,
                status: status()?,
                error_comment: c.text(el::ERROR_COMMENT)?,
            }),
            cf::C_FIND_RQ => Message::FindRq(FindRq {
                message_id: message_id()?,
                sop_class: class()?,
                priority: priority()?,
            }),
            cf::C_FIND_RSP => Message::FindRsp(FindRsp {
                responding_to: responding_to()?,
                sop_class: c.text(el::AFFECTED_SOP_CLASS_UID)?,
                status: status()?,
                has_identifier: has_data,
                error_comment: c.text(el::ERROR_COMMENT)?,
            }),
            cf::C_GET_RQ => Message::GetRq(GetRq {
                message_id: message_id()?,
                sop_class: class()?,
                priority: priority()?,
            }),
            cf::C_GET_RSP => Message::GetRsp(retrieve_rsp()?),
            cf::C_MOVE_RQ => Message::MoveRq(MoveRq {
                message_id: message_id()?,
                sop_class: class()?,
                priority: priority()?,
                destination: need_text(el::MOVE_DESTINATION, "Move Destination (0000,0600)")?,
            }),
            cf::C_MOVE_RSP => Message::MoveRsp(retrieve_rsp()?),
            cf::C_CANCEL_RQ => Message::CancelRq(CancelRq {
                responding_to: responding_to()?,
            }),
            other => return Err(CommandError::UnsupportedCommand(other)),
        })
    }
}

/// The name of a Command Field value.
pub fn command_name(field: u16) -> &'static str {
    match field {
        cf::C_ECHO_RQ => "C-ECHO-RQ",
        cf::C_ECHO_RSP => "C-ECHO-RSP",
        cf::C_STORE_RQ => "C-STORE-RQ",
        cf::C_STORE_RSP => "C-STORE-RSP",
        cf::C_FIND_RQ => "C-FIND-RQ",
        cf::C_FIND_RSP => "C-FIND-RSP",
        cf::C_GET_RQ => "C-GET-RQ",
        cf::C_GET_RSP => "C-GET-RSP",
        cf::C_MOVE_RQ => "C-MOVE-RQ",
        cf::C_MOVE_RSP => "C-MOVE-RSP",
        cf::C_CANCEL_RQ => "C-CANCEL-RQ",
        _ => "unknown command",
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '\\')
        .take(max)
        .collect()
}
