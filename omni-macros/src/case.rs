//! Renaming rules for wire names (`rename_all`) and for handler method names.

/// A `rename_all` rule, spelled as serde spells it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    pub(crate) const ALL: [(&'static str, RenameRule); 8] = [
        ("lowercase", Self::Lower),
        ("UPPERCASE", Self::Upper),
        ("PascalCase", Self::Pascal),
        ("camelCase", Self::Camel),
        ("snake_case", Self::Snake),
        ("SCREAMING_SNAKE_CASE", Self::ScreamingSnake),
        ("kebab-case", Self::Kebab),
        ("SCREAMING-KEBAB-CASE", Self::ScreamingKebab),
    ];

    pub(crate) fn from_str(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, r)| *r)
    }

    /// Applies the rule to a variant name, which Rust spells in PascalCase.
    pub(crate) fn apply(self, variant: &str) -> String {
        match self {
            Self::Lower => variant.to_ascii_lowercase(),
            Self::Upper => variant.to_ascii_uppercase(),
            Self::Pascal => variant.to_owned(),
            Self::Camel => {
                let mut chars = variant.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
            Self::Snake => snake_case(variant),
            Self::ScreamingSnake => snake_case(variant).to_ascii_uppercase(),
            Self::Kebab => snake_case(variant).replace('_', "-"),
            Self::ScreamingKebab => snake_case(variant).replace('_', "-").to_ascii_uppercase(),
        }
    }
}

impl RenameRule {
    /// Applies the rule to a field name, which Rust spells in snake_case, as serde does.
    pub(crate) fn apply_to_field(self, field: &str) -> String {
        match self {
            Self::Lower | Self::Snake => field.to_owned(),
            Self::Upper | Self::ScreamingSnake => field.to_ascii_uppercase(),
            Self::Pascal => field
                .split('_')
                .map(|part| {
                    let mut chars = part.chars();
                    chars.next().map_or_else(String::new, |first| {
                        first.to_ascii_uppercase().to_string() + chars.as_str()
                    })
                })
                .collect(),
            Self::Camel => Self::Camel.apply(&Self::Pascal.apply_to_field(field)),
            Self::Kebab => field.replace('_', "-"),
            Self::ScreamingKebab => field.replace('_', "-").to_ascii_uppercase(),
        }
    }
}

/// `FetchAll` -> `fetch_all`; an underscore goes before every uppercase letter but the first.
pub(crate) fn snake_case(pascal: &str) -> String {
    let mut out = String::with_capacity(pascal.len() + 4);
    for (i, ch) in pascal.char_indices() {
        if ch.is_uppercase() && i > 0 && !out.ends_with('_') {
            out.push('_');
        }
        out.extend(ch.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_serde_spelling() {
        let cases = [
            (RenameRule::Lower, "fetchall"),
            (RenameRule::Upper, "FETCHALL"),
            (RenameRule::Pascal, "FetchAll"),
            (RenameRule::Camel, "fetchAll"),
            (RenameRule::Snake, "fetch_all"),
            (RenameRule::ScreamingSnake, "FETCH_ALL"),
            (RenameRule::Kebab, "fetch-all"),
            (RenameRule::ScreamingKebab, "FETCH-ALL"),
        ];
        for (rule, expected) in cases {
            assert_eq!(rule.apply("FetchAll"), expected, "{rule:?}");
        }
    }

    #[test]
    fn field_rules_match_serde_spelling() {
        let cases = [
            (RenameRule::Lower, "sent_at"),
            (RenameRule::Upper, "SENT_AT"),
            (RenameRule::Pascal, "SentAt"),
            (RenameRule::Camel, "sentAt"),
            (RenameRule::Snake, "sent_at"),
            (RenameRule::ScreamingSnake, "SENT_AT"),
            (RenameRule::Kebab, "sent-at"),
            (RenameRule::ScreamingKebab, "SENT-AT"),
        ];
        for (rule, expected) in cases {
            assert_eq!(rule.apply_to_field("sent_at"), expected, "{rule:?}");
        }
    }

    #[test]
    fn snake_case_keeps_existing_underscores() {
        assert_eq!(snake_case("Send"), "send");
        assert_eq!(snake_case("Fetch_All"), "fetch_all");
        assert_eq!(snake_case("V2Ready"), "v2_ready");
    }
}
