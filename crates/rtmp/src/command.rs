//! Command messages (RTMP 1.0 §7.2): a name, a transaction id, a command object and
//! arguments, all AMF0; and the answers a server sends (`_result`, `onStatus`).

use crate::amf0::{self, Amf0Error, Value};
use crate::message::{type_id, Message};

/// The chunk stream the server's command answers travel on (ffmpeg and FMS use 3).
pub const COMMAND_CSID: u32 = 3;
/// The chunk stream for `onStatus` on a message stream (nginx-rtmp and FMS use 5).
pub const STATUS_CSID: u32 = 5;

/// A decoded command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The command's name (`connect`, `publish`, …).
    pub name: String,
    /// The transaction id (0 when the sender expects no answer).
    pub transaction: f64,
    /// The command object (`Null` for most commands after `connect`).
    pub object: Value,
    /// The remaining arguments.
    pub args: Vec<Value>,
}

/// Why a command message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The AMF0 body is malformed.
    #[error("command body: {0}")]
    Amf0(#[from] Amf0Error),
    /// The body does not start with a name string.
    #[error("command does not start with a name")]
    NoName,
}

impl Command {
    /// Reads a command from an AMF0 command message body (or an AMF3 one, whose first byte
    /// is a format selector before AMF0 values).
    pub fn parse(message_type: u8, body: &[u8]) -> Result<Command, CommandError> {
        let body = match (message_type, body.first()) {
            (type_id::COMMAND_AMF3, Some(0)) => &body[1..],
            _ => body,
        };
        let mut values = amf0::decode_all(body)?.into_iter();
        let Some(Value::String(name)) = values.next() else { return Err(CommandError::NoName) };
        let transaction = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Value::Null);
        Ok(Command { name, transaction, object, args: values.collect() })
    }

    /// The command as a message on `csid`, message stream `stream_id`.
    pub fn to_message(&self, csid: u32, stream_id: u32) -> Message {
        let mut payload = Vec::new();
        Value::String(self.name.clone()).encode(&mut payload);
        Value::Number(self.transaction).encode(&mut payload);
        self.object.encode(&mut payload);
        amf0::encode_all(&self.args, &mut payload);
        Message { csid, timestamp: 0, type_id: type_id::COMMAND_AMF0, stream_id, payload }
    }

    /// The `n`th argument after the command object, as a string.
    pub fn arg_str(&self, n: usize) -> Option<&str> {
        self.args.get(n).and_then(Value::as_str)
    }
}

fn props(items: &[(&str, Value)]) -> Value {
    Value::Object(items.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// The `_result` of `connect`: the server's properties and `NetConnection.Connect.Success`,
/// with the object encoding the client asked for (0 for AMF0).
pub fn connect_result(transaction: f64, object_encoding: f64) -> Command {
    Command {
        name: "_result".into(),
        transaction,
        object: props(&[("fmsVer", text("FMS/3,0,1,123")), ("capabilities", Value::Number(31.0))]),
        args: vec![props(&[
            ("level", text("status")),
            ("code", text("NetConnection.Connect.Success")),
            ("description", text("Connection succeeded.")),
            ("objectEncoding", Value::Number(object_encoding)),
        ])],
    }
}

/// A `_result` with a null command object and the given arguments (`createStream` answers
/// with the new stream id; `releaseStream` and `FCPublish` with `undefined`).
pub fn result(transaction: f64, args: Vec<Value>) -> Command {
    Command { name: "_result".into(), transaction, object: Value::Null, args }
}

/// An `onStatus` event: level `status` or `error`, a code such as
/// `NetStream.Publish.Start`, and a description.
pub fn on_status(level: &str, code: &str, description: &str) -> Command {
    Command {
        name: "onStatus".into(),
        transaction: 0.0,
        object: Value::Null,
        args: vec![props(&[
            ("level", text(level)),
            ("code", text(code)),
            ("description", text(description)),
        ])],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        for cmd in [
            connect_result(1.0, 0.0),
            result(4.0, vec![Value::Number(1.0)]),
            on_status("status", "NetStream.Publish.Start", "cam is now published"),
        ] {
            let m = cmd.to_message(COMMAND_CSID, 0);
            assert_eq!(Command::parse(m.type_id, &m.payload).unwrap(), cmd);
        }
        assert_eq!(Command::parse(20, &[0x05]), Err(CommandError::NoName));
        assert!(matches!(Command::parse(20, &[0x02, 0, 9]), Err(CommandError::Amf0(_))));
        // AMF3 command messages start with a format byte.
        let mut body = vec![0];
        body.extend_from_slice(&result(2.0, vec![]).to_message(3, 0).payload);
        assert_eq!(Command::parse(type_id::COMMAND_AMF3, &body).unwrap().transaction, 2.0);
    }
}
