//! English for messages built from names (a ticket kind, a record kind, a status).

/// `word` with its indefinite article: "an order", "a dispute", "an upload", "a user".
/// By the first letter, as the word is spoken: a vowel takes "an", except where it sounds like a
/// consonant ("user", "unified", "euro", "one").
pub fn with_article(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let consonant_sound = ["use", "usu", "uni", "uti", "eu", "one", "once"]
        .iter()
        .any(|p| lower.starts_with(p));
    let vowel = lower.starts_with(['a', 'e', 'i', 'o', 'u']);
    match vowel && !consonant_sound {
        true => format!("an {word}"),
        false => format!("a {word}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vowels_take_an() {
        for (word, expected) in [
            ("order", "an order"),
            ("other", "an other"),
            ("export", "an export"),
            ("image check", "an image check"),
            ("audit record", "an audit record"),
            ("idempotency record", "an idempotency record"),
            ("upload", "an upload"),
            ("OrderId", "an OrderId"),
            ("dispute", "a dispute"),
            ("privacy", "a privacy"),
            ("report", "a report"),
            ("user", "a user"),
            ("UserId", "a UserId"),
            ("unified code", "a unified code"),
            ("", "a "),
        ] {
            assert_eq!(with_article(word), expected, "{word}");
        }
    }
}
