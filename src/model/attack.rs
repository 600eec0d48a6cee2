//! MITRE ATT&CK (Enterprise) tactics: ids, names and kill-chain order, so every security parser
//! maps what its tool says (an id, a name, a Falco `mitre_*` tag) to one vocabulary, and the
//! security correlator can order the stages of an attack.

/// One tactic of the Enterprise matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tactic {
    /// `TA0001` …
    pub id: &'static str,
    /// The name as ATT&CK writes it: `Initial Access`.
    pub name: &'static str,
    /// Position in the kill chain as the matrix lists it, 1 (Reconnaissance) to 14 (Impact).
    pub order: u8,
}

/// The 14 Enterprise tactics, in kill-chain order (the column order of the ATT&CK matrix).
pub const TACTICS: [Tactic; 14] = [
    Tactic {
        id: "TA0043",
        name: "Reconnaissance",
        order: 1,
    },
    Tactic {
        id: "TA0042",
        name: "Resource Development",
        order: 2,
    },
    Tactic {
        id: "TA0001",
        name: "Initial Access",
        order: 3,
    },
    Tactic {
        id: "TA0002",
        name: "Execution",
        order: 4,
    },
    Tactic {
        id: "TA0003",
        name: "Persistence",
        order: 5,
    },
    Tactic {
        id: "TA0004",
        name: "Privilege Escalation",
        order: 6,
    },
    Tactic {
        id: "TA0005",
        name: "Defense Evasion",
        order: 7,
    },
    Tactic {
        id: "TA0006",
        name: "Credential Access",
        order: 8,
    },
    Tactic {
        id: "TA0007",
        name: "Discovery",
        order: 9,
    },
    Tactic {
        id: "TA0008",
        name: "Lateral Movement",
        order: 10,
    },
    Tactic {
        id: "TA0009",
        name: "Collection",
        order: 11,
    },
    Tactic {
        id: "TA0011",
        name: "Command and Control",
        order: 12,
    },
    Tactic {
        id: "TA0010",
        name: "Exfiltration",
        order: 13,
    },
    Tactic {
        id: "TA0040",
        name: "Impact",
        order: 14,
    },
];

/// The tactic with this id (`TA0002`, any letter case).
pub fn tactic_by_id(id: &str) -> Option<&'static Tactic> {
    let id = id.trim();
    TACTICS.iter().find(|t| t.id.eq_ignore_ascii_case(id))
}

/// The tactic with this name, however a tool spells it: `Initial Access`, `initial_access`,
/// `Initial_Access`, `initial-access`, `command-and-control` all match, as only letters count.
pub fn tactic_by_name(name: &str) -> Option<&'static Tactic> {
    let key = letters(name);
    if key.is_empty() {
        return None;
    }
    TACTICS.iter().find(|t| letters(t.name) == key)
}

/// The tactic of a Falco-style tag, `mitre_execution` or `mitre_command_and_control`; `None`
/// for any other tag (Falco's rules also carry `container`, `T1059` and the like).
pub fn tactic_by_tag(tag: &str) -> Option<&'static Tactic> {
    let lower = tag.trim().to_ascii_lowercase();
    lower.strip_prefix("mitre_").and_then(tactic_by_name)
}

/// A tactic by id or by name: what tools put in one field without saying which.
pub fn tactic(text: &str) -> Option<&'static Tactic> {
    tactic_by_id(text).or_else(|| tactic_by_name(text))
}

/// A technique or sub-technique id (`T1059`, `t1059.004`) in ATT&CK's spelling, or `None`
/// when `text` is not one.
pub fn technique_id(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_uppercase();
    let rest = t.strip_prefix('T')?;
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (digits(main, 4) && sub.is_none_or(|s| digits(s, 3))).then_some(t)
}

fn letters(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_fourteen_tactics_in_kill_chain_order_with_unique_ids() {
        for (i, t) in TACTICS.iter().enumerate() {
            assert_eq!(usize::from(t.order), i + 1, "{t:?}");
            assert_eq!(tactic_by_id(t.id), Some(t));
            assert_eq!(tactic_by_name(t.name), Some(t));
        }
        assert_eq!(TACTICS[0].id, "TA0043");
        assert_eq!(TACTICS[13].id, "TA0040");
    }

    #[test]
    fn tools_spellings_find_the_same_tactic() {
        let execution = tactic_by_id("TA0002").unwrap();
        for spelling in ["Execution", "execution", "ta0002"] {
            assert_eq!(tactic(spelling), Some(execution), "{spelling}");
        }
        assert_eq!(tactic_by_tag("mitre_execution"), Some(execution));
        let c2 = tactic_by_id("TA0011").unwrap();
        for spelling in [
            "Command_and_Control",
            "command-and-control",
            "Command and Control",
        ] {
            assert_eq!(tactic_by_name(spelling), Some(c2), "{spelling}");
        }
        assert_eq!(tactic_by_tag("mitre_command_and_control"), Some(c2));
        assert_eq!(tactic_by_tag("container"), None);
        assert_eq!(tactic_by_tag("T1059"), None);
        assert_eq!(tactic("Lunch Break"), None);
        assert_eq!(tactic(""), None);
    }

    #[test]
    fn technique_ids_are_recognised_and_normalised() {
        assert_eq!(technique_id("T1059").as_deref(), Some("T1059"));
        assert_eq!(technique_id(" t1059.004").as_deref(), Some("T1059.004"));
        for bad in [
            "T105",
            "T10599",
            "T1059.04",
            "TA0002",
            "mitre_execution",
            "1059",
        ] {
            assert_eq!(technique_id(bad), None, "{bad}");
        }
    }
}
