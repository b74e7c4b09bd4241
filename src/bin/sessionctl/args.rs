//! Argument values the command families share: `KEY=VALUE` pairs, RFC 3339 moments,
//! and tokens that may come from stdin.

use std::collections::HashMap;
use std::io::BufRead;

use crate::error::CtlError;

/// A `KEY=VALUE` argument split at its first "=" (the value may hold more of them).
pub fn key_value(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some(("", _)) => Err("the key before \"=\" is empty".to_owned()),
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err("expected KEY=VALUE".to_owned()),
    }
}

/// The pairs of a repeatable `KEY=VALUE` flag as a map; a key given twice is an error
/// rather than a silent overwrite.
pub fn into_map(
    flag: &str,
    pairs: Vec<(String, String)>,
) -> Result<HashMap<String, String>, CtlError> {
    let mut map = HashMap::with_capacity(pairs.len());
    for (key, value) in pairs {
        if map.contains_key(&key) {
            return Err(CtlError::Usage(format!(
                "{flag}: key {key:?} is given twice"
            )));
        }
        map.insert(key, value);
    }
    Ok(map)
}

/// An RFC 3339 moment as a protobuf timestamp.
pub fn rfc3339_moment(arg: &str) -> Result<prost_types::Timestamp, String> {
    let at = humantime_serde::re::humantime::parse_rfc3339_weak(arg)
        .map_err(|error| format!("not an RFC 3339 time ({error})"))?;
    Ok(prost_types::Timestamp::from(at))
}

/// A token as given, or the first line of stdin for "-" (surrounding blanks trimmed).
pub fn secret(value: String, what: &str) -> Result<String, CtlError> {
    if value != "-" {
        return Ok(value);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| CtlError::Usage(format!("cannot read the {what} from stdin: {error}")))?;
    let token = line.trim();
    if token.is_empty() {
        return Err(CtlError::Usage(format!("no {what} on stdin")));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{into_map, key_value};
    use crate::error::CtlError;

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        assert_eq!(key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(key_value("a="), Ok(("a".into(), String::new())));
        assert!(key_value("=b").is_err());
        assert!(key_value("ab").is_err());
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let pairs = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        assert!(matches!(into_map("--meta", pairs), Err(CtlError::Usage(_))));
    }
}
