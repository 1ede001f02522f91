//! The JSON-lines worker protocol of SPEC §5, shared by both ends.
//!
//! runjobs → worker: `{"id": 7, "input": 3}`; worker → runjobs: `{"id": 7, "output": 9}` or
//! `{"id": 7, "error": "message"}`. A worker may add `"duration_s"` (the time the call took),
//! which runjobs' own builtin workers do so that results carry exact timings.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// One item sent to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request<'a> {
    pub id: u64,
    #[serde(borrow)]
    pub input: &'a RawValue,
}

/// Writes a request line without building an intermediate value.
pub fn write_request(buf: &mut Vec<u8>, id: u64, input: &Value) {
    buf.extend_from_slice(b"{\"id\":");
    buf.extend_from_slice(id.to_string().as_bytes());
    buf.extend_from_slice(b",\"input\":");
    serde_json::to_writer(&mut *buf, input).expect("a JSON value always serializes");
    buf.extend_from_slice(b"}\n");
}

/// One result received from a worker.
#[derive(Debug, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(default)]
    pub output: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub duration_s: Option<f64>,
}

/// What a builtin worker writes back.
#[derive(Debug, Serialize)]
pub struct Reply<'a> {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    pub duration_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_round_trips() {
        let mut buf = Vec::new();
        write_request(&mut buf, 7, &serde_json::json!({"a": [1, "x"]}));
        assert_eq!(buf, b"{\"id\":7,\"input\":{\"a\":[1,\"x\"]}}\n");
        let req: Request = serde_json::from_slice(&buf).unwrap();
        assert_eq!(req.id, 7);
        assert_eq!(req.input.get(), r#"{"a":[1,"x"]}"#);
    }

    #[test]
    fn response_forms_parse() {
        let ok: Response = serde_json::from_str(r#"{"id":1,"output":9}"#).unwrap();
        assert_eq!(ok.output.unwrap().get(), "9");
        let err: Response = serde_json::from_str(r#"{"id":2,"error":"bad"}"#).unwrap();
        assert_eq!(err.error.as_deref(), Some("bad"));
        assert!(serde_json::from_str::<Response>("hello").is_err());
    }
}
