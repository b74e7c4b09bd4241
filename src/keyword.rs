//! Keywords of flags and settings (`sync`, `redis`, `json`…) read as the config file
//! reads them, so a flag and the file accept the same words and name the same choices
//! when refusing one. A leaf: every layer's settings may use it.

/// `word` as the serde value of `T` (an enum of lowercase keywords).
pub fn parse_keyword<T: serde::de::DeserializeOwned>(word: &str) -> Result<T, String> {
    use serde::de::IntoDeserializer;
    T::deserialize(word.into_deserializer())
        .map_err(|error: serde::de::value::Error| error.to_string())
}
