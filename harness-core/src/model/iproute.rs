//! The `ip route` and `ip rule` grammar a topology's `routes:` and `rules:` are written in, for
//! both families: as with `ip`, the family comes from the addresses written (`default via
//! 2001:db8:1::254` is an IPv6 route), or from a leading `-6` (`-4`) where no address says it
//! (`-6 pref 101 iif cust blackhole`, as `ip -6 rule add` takes it).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{IpFamily, PolicyRule, Route, RuleAction};

fn family_of(a: &IpAddr) -> IpFamily {
    match a {
        IpAddr::V4(_) => IpFamily::V4,
        IpAddr::V6(_) => IpFamily::V6,
    }
}

fn name(f: IpFamily) -> &'static str {
    match f {
        IpFamily::V4 => "IPv4",
        IpFamily::V6 => "IPv6",
    }
}

/// A leading `-4`/`-6` (also `-family inet|inet6`), taken off `words`.
fn family_flag(words: &mut Vec<&str>) -> Result<Option<IpFamily>, String> {
    let f = match words.first().copied() {
        Some("-4") => IpFamily::V4,
        Some("-6") => IpFamily::V6,
        Some(w) if w.starts_with('-') => {
            return Err(format!(
                "`{w}`: the only flags here are `-4` and `-6` (the family), written first"
            ))
        }
        _ => return Ok(None),
    };
    words.remove(0);
    Ok(Some(f))
}

/// Settles a line's family: each `(what, family)` seen must agree with the flag and with
/// each other; none seen and no flag is IPv4, as `ip` takes it.
fn settle(flag: Option<IpFamily>, seen: &[(String, IpFamily)]) -> Result<IpFamily, String> {
    let mut fam = flag.map(|f| (format!("`-{}`", if f == IpFamily::V4 { 4 } else { 6 }), f));
    for (what, f) in seen {
        match &fam {
            Some((first, g)) if g != f => {
                return Err(format!(
                    "{first} is {} but {what} is {}: a route or a rule is of one family; write one line for each family",
                    name(*g),
                    name(*f)
                ))
            }
            Some(_) => {}
            None => fam = Some((what.clone(), *f)),
        }
    }
    Ok(fam.map_or(IpFamily::V4, |(_, f)| f))
}

/// An address or a prefix of either family (`all` with a family given, in rules), truncated
/// to its network; a bare address is a host prefix.
fn prefix(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address or prefix"))
}

fn default_of(f: IpFamily) -> IpNet {
    match f {
        IpFamily::V4 => IpNet::V4(Ipv4Net::default()),
        IpFamily::V6 => IpNet::V6(Ipv6Net::default()),
    }
}

/// `[-4|-6] DST [via GW] [dev IF] [from PREFIX] [table N] [metric N]`, as `ip route add` takes
/// it; DST is `default` or a prefix of either family; `from` (IPv6 only) makes the route
/// source-specific.
pub fn parse_route(text: &str) -> Result<Route, String> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let flag = family_flag(&mut words)?;
    let mut w = words.into_iter();
    let dst = match w.next() {
        None => return Err("empty route".into()),
        Some("default") => None,
        Some(d) => Some(prefix(d).map_err(|_| {
            format!("`{d}` is not `default` or an IPv4 or IPv6 prefix (10.0.0.0/8, 2001:db8::/32)")
        })?),
    };
    let mut via: Option<IpAddr> = None;
    let mut r = Route {
        dst: default_of(IpFamily::V4),
        from: None,
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
                via = Some(arg.parse().map_err(|_| {
                    format!("gateway `{arg}` is not an IPv4 or IPv6 address")
                })?)
            }
            "dev" => r.dev = Some(arg.to_string()),
            "from" => r.from = Some(prefix(arg)?),
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
                "unknown word `{word}`: a route is `[-6] DST [via GW] [dev IF] [from PREFIX] [table N] [metric N]`"
            ))
            }
        }
    }
    let mut seen = Vec::new();
    if let Some(d) = dst {
        seen.push((format!("destination {d}"), family_of(&d.addr())));
    }
    if let Some(g) = via {
        seen.push((format!("gateway {g}"), family_of(&g)));
    }
    if let Some(f) = r.from {
        seen.push((format!("`from {f}`"), family_of(&f.addr())));
    }
    let fam = settle(flag, &seen)?;
    if r.from.is_some() && fam == IpFamily::V4 {
        return Err("`from PREFIX` on a route is IPv6 only (source-specific routing); for IPv4, choose by source with `ip rule add from PREFIX lookup N`".into());
    }
    r.dst = dst.unwrap_or_else(|| default_of(fam));
    r.via = via;
    if r.via.is_none() && r.dev.is_none() {
        return Err("give a gateway (`via GW`) or an interface (`dev IF`)".into());
    }
    Ok(r)
}

/// `[-4|-6] [pref N] [not] [from P] [to P] [iif IF] [oif IF] [fwmark N[/M]] ACTION`, as `ip
/// rule add` takes it; ACTION is `lookup N|main|local|default` (or `table …`), `blackhole`,
/// `prohibit` or `unreachable`. As in `ip rule`, `not` inverts the whole selector, not just
/// `from`. The family is that of `from`/`to`, or `-6`; without either, IPv4.
pub fn parse_rule(text: &str) -> Result<PolicyRule, String> {
    let num = |s: &str| -> Result<u32, String> {
        match s.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16),
            None => s.parse(),
        }
        .map_err(|_| format!("`{s}` is not a number"))
    };
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let flag = family_flag(&mut words)?;
    let mut r = PolicyRule {
        family: IpFamily::V4,
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
    // `all` is the whole space of the line's family, known only at the end.
    let (mut from_all, mut to_all) = (false, false);
    let mut action = None;
    let mut w = words.into_iter();
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
                    "from" if arg == "all" => from_all = true,
                    "to" if arg == "all" => to_all = true,
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
                    _ => return Err(format!("unknown word `{word}`: a rule is `[-6] [pref N] [not] [from P] [to P] [iif IF] [oif IF] [fwmark N[/M]] (lookup N | blackhole | prohibit | unreachable)`")),
                }
            }
        }
    }
    let mut seen = Vec::new();
    if let Some(f) = r.from {
        seen.push((format!("`from {f}`"), family_of(&f.addr())));
    }
    if let Some(t) = r.to {
        seen.push((format!("`to {t}`"), family_of(&t.addr())));
    }
    r.family = settle(flag, &seen)?;
    if from_all {
        r.from = Some(default_of(r.family));
    }
    if to_all {
        r.to = Some(default_of(r.family));
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
    #[case::bad_prefix(
        "from 10.37.1.300/24 blackhole",
        "is not an IPv4 or IPv6 address or prefix"
    )]
    #[case::bad_v6(
        "from 2001:db8::g/64 blackhole",
        "`2001:db8::g/64` is not an IPv4 or IPv6"
    )]
    #[case::mixed(
        "from 10.0.0.0/8 to 2001:db8::/32 blackhole",
        "`from 10.0.0.0/8` is IPv4 but `to 2001:db8::/32` is IPv6"
    )]
    #[case::flag_mismatch(
        "-4 from 2001:db8::/32 blackhole",
        "`-4` is IPv4 but `from 2001:db8::/32` is IPv6"
    )]
    #[case::bad_flag("-x blackhole", "only flags here are `-4` and `-6`")]
    fn refuses(#[case] text: &str, #[case] says: &str) {
        let e = parse_rule(text).expect_err("refused");
        assert!(e.contains(says), "{e}");
    }
}

#[cfg(test)]
mod family_tests {
    use super::{parse_route, parse_rule, IpFamily, RuleAction};
    use rstest::rstest;

    /// `from PREFIX`: source-specific routing, IPv6 only; the family follows the prefix too.
    #[test]
    fn source_specific_routes() {
        let r = parse_route("default via 2001:db8:2::254 from 2001:db8:2::/48").expect("parses");
        assert_eq!(r.dst.to_string(), "::/0");
        assert_eq!(
            r.from.map(|f| f.to_string()),
            Some("2001:db8:2::/48".into())
        );
        let r = parse_route("default dev eth2 from 2001:db8:2:157::5/64").expect("parses");
        assert_eq!(r.dst.to_string(), "::/0", "the family comes from `from`");
        assert_eq!(
            r.from.map(|f| f.to_string()),
            Some("2001:db8:2:157::/64".into())
        );
    }

    #[rstest]
    #[case::v4_default("default via 10.37.1.254", "0.0.0.0/0", Some("10.37.1.254"))]
    #[case::v6_default("default via 2001:db8:1::254", "::/0", Some("2001:db8:1::254"))]
    #[case::v6_flag_dev("-6 default dev eth0", "::/0", None)]
    #[case::v6_prefix(
        "2001:db8:1::/48 via 2001:db8:4::2",
        "2001:db8:1::/48",
        Some("2001:db8:4::2")
    )]
    #[case::v6_truncated("2001:db8:1::1/48 dev eth0", "2001:db8:1::/48", None)]
    #[case::v6_host("2001:db8::1 dev eth0", "2001:db8::1/128", None)]
    #[case::v4_flag("-4 10.0.0.0/8 via 10.0.0.1", "10.0.0.0/8", Some("10.0.0.1"))]
    fn routes(#[case] text: &str, #[case] dst: &str, #[case] via: Option<&str>) {
        let r = parse_route(text).expect("parses");
        assert_eq!(
            (r.dst.to_string(), r.via.map(|v| v.to_string())),
            (dst.to_string(), via.map(String::from))
        );
    }

    #[rstest]
    #[case::gw_mismatch(
        "10.0.0.0/8 via 2001:db8::1",
        "destination 10.0.0.0/8 is IPv4 but gateway 2001:db8::1 is IPv6"
    )]
    #[case::flag_mismatch("-6 default via 10.0.0.1", "`-6` is IPv6 but gateway 10.0.0.1 is IPv4")]
    #[case::flag_dst(
        "-4 2001:db8::/32 dev eth0",
        "`-4` is IPv4 but destination 2001:db8::/32 is IPv6"
    )]
    #[case::bad_gw(
        "default via 2001:db8::zz",
        "gateway `2001:db8::zz` is not an IPv4 or IPv6"
    )]
    #[case::bad_dst(
        "2001:db8:::/64 dev eth0",
        "is not `default` or an IPv4 or IPv6 prefix"
    )]
    #[case::flag_late("default -6 via 2001:db8::1", "unknown word `-6`")]
    #[case::from_v4(
        "default via 10.0.0.1 from 192.168.0.0/16",
        "`from PREFIX` on a route is IPv6 only"
    )]
    #[case::from_mismatch(
        "default via 2001:db8::1 from 192.168.0.0/16",
        "gateway 2001:db8::1 is IPv6 but `from 192.168.0.0/16` is IPv4"
    )]
    fn bad_routes(#[case] text: &str, #[case] says: &str) {
        let e = parse_route(text).expect_err("refused");
        assert!(e.contains(says), "{e}");
    }

    #[rstest]
    #[case::v4_bare("pref 101 iif cust blackhole", IpFamily::V4, None)]
    #[case::v6_flag("-6 pref 101 iif cust blackhole", IpFamily::V6, None)]
    #[case::v6_from(
        "pref 100 iif cust from 2001:db8:1::/48 lookup main",
        IpFamily::V6,
        Some("2001:db8:1::/48")
    )]
    #[case::v6_all("-6 from all lookup 100", IpFamily::V6, Some("::/0"))]
    #[case::v4_all("from all lookup 100", IpFamily::V4, Some("0.0.0.0/0"))]
    fn rules(#[case] text: &str, #[case] fam: IpFamily, #[case] from: Option<&str>) {
        let r = parse_rule(text).expect("parses");
        assert_eq!(r.family, fam);
        assert_eq!(r.from.map(|f| f.to_string()), from.map(String::from));
        assert!(matches!(
            r.action,
            RuleAction::Blackhole | RuleAction::Table(_)
        ));
    }
}
