//! The bench's one error type, and how an error is printed with its causes.

use std::error::Error;

/// Any error of the bench: it is reported once, in `main`, and ends the run.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// An error and its sources, `outer: inner: root`.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
