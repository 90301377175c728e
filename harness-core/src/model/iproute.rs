//! The `ip route` and `ip rule` grammar a topology's `routes:` and `rules:` are written in.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{PolicyRule, Route, RuleAction};

/// `DST [via GW] [dev IF] [table N] [metric N]`, as `ip route add` takes it.
pub fn parse_route(text: &str) -> Result<Route, String> {
    let mut w = text.split_whitespace();
    let dst = match w.next() {
        None => return Err("empty route".into()),
        Some("default") => Ipv4Net::default(),
        Some(d) => match d.parse::<Ipv4Net>() {
            Ok(n) => n.trunc(),
            Err(_) => d
                .parse::<Ipv4Addr>()
                .map(|a| Ipv4Net::new(a, 32).expect("/32"))
                .map_err(|_| format!("`{d}` is not `default` or an IPv4 prefix"))?,
        },
    };
    let mut r = Route {
        dst,
        via: None,
        dev: None,
        table: None,
        metric: None,
        text: text.to_string(),
    };
    while let Some(word) = w.next() {
        let arg = w.next().ok_or_else(|| format!("`{word}` needs a value"))?;
        match word {
            "via" => {
                r.via = Some(
                    arg.parse()
                        .map_err(|_| format!("gateway `{arg}` is not an IPv4 address"))?,
                )
            }
            "dev" => r.dev = Some(arg.to_string()),
            "table" => {
                r.table = Some(
                    arg.parse()
                        .map_err(|_| format!("table `{arg}`: use a number here"))?,
                )
            }
            "metric" | "preference" | "priority" => {
                r.metric = Some(
                    arg.parse()
                        .map_err(|_| format!("metric `{arg}` is not a number"))?,
                )
            }
            _ => {
                return Err(format!(
                "unknown word `{word}`: a route is `DST [via GW] [dev IF] [table N] [metric N]`"
            ))
            }
        }
    }
    if r.via.is_none() && r.dev.is_none() {
        return Err("give a gateway (`via GW`) or an interface (`dev IF`)".into());
    }
    Ok(r)
}

/// `[pref N] [not] [from P] [to P] [iif IF] [oif IF] [fwmark N[/M]] ACTION`, as `ip rule add`
/// takes it; ACTION is `lookup N|main|local|default` (or `table …`), `blackhole`, `prohibit`
/// or `unreachable`. As in `ip rule`, `not` inverts the whole selector, not just `from`.
pub fn parse_rule(text: &str) -> Result<PolicyRule, String> {
    let num = |s: &str| -> Result<u32, String> {
        match s.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16),
            None => s.parse(),
        }
        .map_err(|_| format!("`{s}` is not a number"))
    };
    let prefix = |s: &str| -> Result<Ipv4Net, String> {
        if s == "all" {
            return Ok(Ipv4Net::default());
        }
        s.parse::<Ipv4Net>()
            .map(|n| n.trunc())
            .or_else(|_| {
                s.parse::<Ipv4Addr>()
                    .map(|a| Ipv4Net::new(a, 32).expect("/32"))
            })
            .map_err(|_| format!("`{s}` is not an IPv4 prefix"))
    };
    let mut r = PolicyRule {
        pref: None,
        not: false,
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: None,
        action: RuleAction::Unreachable,
        text: text.to_string(),
    };
    let mut action = None;
    let mut w = text.split_whitespace();
    while let Some(word) = w.next() {
        match word {
            "not" => r.not = true,
            "blackhole" => action = Some(RuleAction::Blackhole),
            "prohibit" => action = Some(RuleAction::Prohibit),
            "unreachable" => action = Some(RuleAction::Unreachable),
            _ => {
                let arg = w.next().ok_or_else(|| format!("`{word}` needs a value"))?;
                match word {
                    "pref" | "priority" | "preference" => r.pref = Some(num(arg)?),
                    "from" => r.from = Some(prefix(arg)?),
                    "to" => r.to = Some(prefix(arg)?),
                    "iif" => r.iif = Some(arg.to_string()),
                    "oif" => r.oif = Some(arg.to_string()),
                    "fwmark" => {
                        r.fwmark = Some(match arg.split_once('/') {
                            Some((m, k)) => (num(m)?, Some(num(k)?)),
                            None => (num(arg)?, None),
                        })
                    }
                    "lookup" | "table" => {
                        let id = match arg {
                            "main" => 254,
                            "local" => 255,
                            "default" => 253,
                            n => num(n)?,
                        };
                        action = Some(RuleAction::Table(id))
                    }
                    _ => return Err(format!("unknown word `{word}`: a rule is `[pref N] [not] [from P] [to P] [iif IF] [oif IF] [fwmark N[/M]] (lookup N | blackhole | prohibit | unreachable)`")),
                }
            }
        }
    }
    r.action = action
        .ok_or("say what the rule does: `lookup N`, `blackhole`, `prohibit` or `unreachable`")?;
    Ok(r)
}

#[cfg(test)]
mod rule_tests {
    use super::{parse_rule, RuleAction};
    use rstest::rstest;

    #[rstest]
    #[case::acl(
        "pref 100 iif cust from 10.37.1.0/24 lookup main",
        Some(100),
        false,
        Some("10.37.1.0/24"),
        Some("cust"),
        None,
        RuleAction::Table(254)
    )]
    #[case::blackhole(
        "pref 101 iif cust blackhole",
        Some(101),
        false,
        None,
        Some("cust"),
        None,
        RuleAction::Blackhole
    )]
    #[case::masked_mark("fwmark 0x2/0xf lookup 252", None, false, None, None, Some((2, Some(15))), RuleAction::Table(252))]
    #[case::inverted(
        "not from 10.0.0.0/8 prohibit",
        None,
        true,
        Some("10.0.0.0/8"),
        None,
        None,
        RuleAction::Prohibit
    )]
    fn parses(
        #[case] text: &str,
        #[case] pref: Option<u32>,
        #[case] not: bool,
        #[case] from: Option<&str>,
        #[case] iif: Option<&str>,
        #[case] fwmark: Option<(u32, Option<u32>)>,
        #[case] action: RuleAction,
    ) {
        let r = parse_rule(text).expect("parses");
        assert_eq!(
            (
                r.pref,
                r.not,
                r.from.map(|f| f.to_string()),
                r.iif.as_deref(),
                r.fwmark,
                r.action
            ),
            (pref, not, from.map(String::from), iif, fwmark, action)
        );
    }

    #[rstest]
    #[case::no_action("iif cust", "say what the rule does")]
    #[case::unknown_word("iff cust blackhole", "unknown word `iff`")]
    #[case::bad_prefix("from 10.37.1.300/24 blackhole", "is not an IPv4 prefix")]
    fn refuses(#[case] text: &str, #[case] says: &str) {
        let e = parse_rule(text).expect_err("refused");
        assert!(e.contains(says), "{e}");
    }
}
