//! How each kind of setting is written as text, in a file or a variable: durations, lists,
//! flags, counts, methods and algorithms, the store's key. `Settings` names these readers in
//! its serde attributes.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::{self, Deserializer, Unexpected};
use serde::Deserialize;

use super::auth_method::AuthMethod;
#[cfg(feature = "jwt")]
use crate::credential::SigningAlgorithm;

// How each kind of value is written. Errors say what the text is (`not a duration`), for
// `from_variables` to put after the variable's name; they never repeat a secret.

/// A duration as operators write it: `30s`, `5m`, `1h 30m`, or a plain number of seconds.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("not a duration ({e}); write e.g. `30s`, `5m`, `1h 30m` or a number of seconds")
    })
}

pub(super) fn parse_auth_method(text: &str) -> Result<AuthMethod, String> {
    let name = match text.trim().to_ascii_lowercase().as_str() {
        "basic" => "client_secret_basic".to_owned(),
        "post" => "client_secret_post".to_owned(),
        "none" => return Ok(AuthMethod::None),
        name => name.to_owned(),
    };
    AuthMethod::PREFERENCE.iter().copied().find(|method| method.as_str() == name).ok_or_else(|| {
        let known: Vec<&str> = AuthMethod::PREFERENCE.iter().map(|m| m.as_str()).collect();
        format!("`{}`, not `basic`, `post` or one of {}", text.trim(), known.join(", "))
    })
}

#[cfg(feature = "jwt")]
pub(super) fn parse_signing_algorithm(text: &str) -> Result<SigningAlgorithm, String> {
    use SigningAlgorithm::{Es256, Ps256, Rs256};
    [Rs256, Ps256, Es256]
        .into_iter()
        .find(|algorithm| text.trim().eq_ignore_ascii_case(algorithm.as_str()))
        .ok_or_else(|| format!("`{}`, not `RS256`, `PS256` or `ES256`", text.trim()))
}

pub(super) fn no_secret() -> SecretString {
    SecretString::from(String::new())
}

pub(super) fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SecretString, D::Error> {
    String::deserialize(deserializer).map(SecretString::from)
}

/// 32 bytes in standard base64.
#[cfg(feature = "store")]
pub(super) fn encryption_key<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<secrecy::SecretSlice<u8>>, D::Error> {
    use base64::Engine;
    use secrecy::ExposeSecret;

    let text = secret(deserializer)?;
    let key = base64::engine::general_purpose::STANDARD.decode(text.expose_secret().trim());
    match key {
        Ok(key) if key.len() == 32 => Ok(Some(key.into())),
        _ => Err(de::Error::custom(
            "not 32 bytes in base64; make a key with `openssl rand -base64 32`",
        )),
    }
}

pub(super) fn auth_method<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<AuthMethod>, D::Error> {
    let Some(name) = Option::<String>::deserialize(deserializer)? else { return Ok(None) };
    parse_auth_method(&name).map(Some).map_err(de::Error::custom)
}

#[cfg(feature = "jwt")]
pub(super) fn signing_algorithm<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SigningAlgorithm>, D::Error> {
    let Some(name) = Option::<String>::deserialize(deserializer)? else { return Ok(None) };
    parse_signing_algorithm(&name).map(Some).map_err(de::Error::custom)
}

#[cfg(feature = "dpop")]
pub(super) fn dpop_algorithm<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<crate::credential::DpopAlgorithm>, D::Error> {
    let Some(name) = Option::<String>::deserialize(deserializer)? else { return Ok(None) };
    crate::credential::DpopAlgorithm::parse(&name).map(Some).map_err(de::Error::custom)
}

pub(super) fn duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<HumanDuration>::deserialize(deserializer)?.map(|d| d.0))
}

/// A duration as text (`"5m"`) or as a number of seconds.
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\" or \"1h 30m\", or seconds")
            }

            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_secs(seconds)))
            }

            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<HumanDuration, E> {
                let seconds = u64::try_from(seconds)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(seconds), &self))?;
                self.visit_u64(seconds)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                parse_duration(text).map(HumanDuration).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// A count as a number, or as text (the environment has nothing else).
pub(super) fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    struct Visitor;

    impl de::Visitor<'_> for Visitor {
        type Value = Option<usize>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            usize::try_from(value).map(Some).map_err(|_| E::custom("too large"))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            usize::try_from(value)
                .map(Some)
                .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            let parsed = text.trim().parse();
            parsed.map(Some).map_err(|_| E::custom(format_args!("`{text}`, not a whole number")))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(Visitor)
}

/// `true` or `false`, as a boolean or as text (as the environment has it).
pub(super) fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct Visitor;

    impl de::Visitor<'_> for Visitor {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("`true` or `false`")
        }

        fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
            match text.trim() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(E::custom(format_args!("`{other}`, not `true` or `false`"))),
            }
        }
    }

    deserializer.deserialize_any(Visitor)
}

pub(super) fn some_flag<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    flag(deserializer).map(Some)
}

/// A string, or a list of strings.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A list, or a string of items separated by spaces: every item split on whitespace.
pub(super) fn words<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let strings = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    };
    Ok(strings.iter().flat_map(|s| s.split_whitespace()).map(str::to_owned).collect())
}

/// Names and values, in order: a table, or form-encoded text (`tenant=acme&prompt=none`).
pub(super) fn params<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, String)>, D::Error> {
    struct Visitor;

    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Vec<(String, String)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of names and values, or form-encoded text (`name=value&...`)")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(form_urlencoded::parse(text.trim().as_bytes()).into_owned().collect())
        }

        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut params = Vec::new();
            while let Some(param) = map.next_entry()? {
                params.push(param);
            }
            Ok(params)
        }
    }

    deserializer.deserialize_any(Visitor)
}
