//! How log lines are written: tracing-subscriber's text or JSON lines, and a call's lines
//! carry its request id as if they were in a span `call{request_id=…}`. The call log
//! keeps an untraced call's request id in its task instead of opening that span (a span
//! per call cost ~8 % of a Whoami's server CPU), so the id is added here, to the few
//! lines that are written.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::layers::request_id;

/// The name of the span a call's request id appears in.
const CALL_SPAN: &str = "call";

/// The layer that writes log lines to `writer`: JSON objects, or text (with colours when
/// `ansi`).
pub fn layer<S, W>(json: bool, ansi: bool, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    if json {
        let format = format().json().with_current_span(true);
        lines
            .json()
            .event_format(WithRequestId {
                inner: format,
                json,
            })
            .boxed()
    } else {
        let format = format().with_ansi(ansi);
        lines
            .with_ansi(ansi)
            .event_format(WithRequestId {
                inner: format,
                json,
            })
            .boxed()
    }
}

fn format() -> format::Format {
    format::Format::default()
}

/// Formats with `inner`, then adds the request id of the call being served, if any.
struct WithRequestId<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let id = request_id::current();
        let Some(id) = id.as_ref().and_then(|id| id.to_str().ok()) else {
            return self.inner.format_event(context, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(context, Writer::new(&mut line), event)?;
        let in_spans = context.event_scope().is_some();
        let line = if self.json {
            json_in_call(&line, id)
        } else {
            text_in_call(&line, *event.metadata().level(), in_spans, id)
        };
        writer.write_str(&line)
    }
}

/// A text line with `call{request_id=…}:` first among its spans, where the text format
/// puts spans: right after the level.
fn text_in_call(line: &str, level: Level, in_spans: bool, id: &str) -> String {
    let at = line
        .find(level.as_str())
        .and_then(|level_at| line[level_at..].find(' ').map(|space| level_at + space + 1));
    let Some(at) = at else {
        return line.to_owned();
    };
    let separator = if in_spans { "" } else { " " };
    format!(
        "{}{CALL_SPAN}{{request_id={id:?}}}:{separator}{}",
        &line[..at],
        &line[at..]
    )
}

/// A JSON line with the call as its outermost span (first in `spans`), and as `span`
/// when it is in no other; the rest of the line as written, keys in their order. A `,"`
/// never occurs inside a string value (its quotes are escaped), so `,"spans":[` is that
/// key: no event or span of sessiond has a field of that name.
fn json_in_call(line: &str, id: &str) -> String {
    const SPANS: &str = r#","spans":["#;
    let call = format!(
        r#"{{"request_id":{},"name":"{CALL_SPAN}"}}"#,
        serde_json::Value::from(id)
    );
    let body = line.trim_end();
    if let Some(at) = body.find(SPANS).map(|at| at + SPANS.len()) {
        let separator = if body[at..].starts_with(']') { "" } else { "," };
        return format!("{}{call}{separator}{}\n", &body[..at], &body[at..]);
    }
    match body.strip_suffix('}') {
        Some(head) => format!(r#"{head},"span":{call},"spans":[{call}]}}"#) + "\n",
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tonic::codegen::http::HeaderValue;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Everything written, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;

        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    /// The lines of: one event outside a call, one in call `abc`, one in call `abc`
    /// inside a span of its own.
    fn lines(json: bool) -> Vec<String> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(json, false, captured.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            request_id::sync_scope(HeaderValue::from_static("abc"), || {
                tracing::info!(code = 5, "inside");
                tracing::info_span!("sled.commit", changes = 2).in_scope(|| {
                    tracing::warn!("nested");
                });
            });
        });
        let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone());
        text.expect("utf-8").lines().map(str::to_owned).collect()
    }

    #[test]
    fn text_lines_of_a_call_carry_its_request_id_as_its_span() {
        let lines = lines(false);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(!lines[0].contains("request_id"), "{}", lines[0]);
        assert!(
            lines[1].contains(
                r#" INFO call{request_id="abc"}: sessiond::log_lines::tests: inside code=5"#
            ),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains(r#" WARN call{request_id="abc"}:sled.commit{changes=2}: sessiond"#),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn json_lines_of_a_call_carry_its_request_id_as_its_span() {
        let raw = lines(true);
        assert!(
            raw.iter().all(|line| line.starts_with(r#"{"timestamp":"#)),
            "keys in the formatter's order: {raw:?}"
        );
        let lines: Vec<serde_json::Value> = raw
            .iter()
            .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].get("span").is_none(), "{}", lines[0]);
        let call = serde_json::json!({ "request_id": "abc", "name": "call" });
        assert_eq!(lines[1]["fields"]["message"], "inside");
        assert_eq!(lines[1]["span"], call);
        assert_eq!(lines[1]["spans"], serde_json::json!([call]));
        assert_eq!(lines[2]["span"]["name"], "sled.commit");
        assert_eq!(lines[2]["spans"][0], call);
        assert_eq!(lines[2]["spans"][1]["name"], "sled.commit");
    }
}
