//! `netstat -ibn` parser (interface byte counters) and `route -n get default`
//! parser (the default interface).
//!
//! `netstat -ibn` prints one row per interface *address*, each repeating the
//! interface's counters, plus a `<Link#N>` row; the Address cell may be empty
//! and a down interface gets a `*` after its name. So: one record per
//! interface, from its `<Link#N>` row; the counter columns are located from the
//! header and counted from the end of the row (an empty Address shifts tokens
//! from the front); `-` means n/a; extra columns (`Idrop`, `Drop`) are fine.

use tracing::debug;

use super::super::IfaceSample;

/// Interfaces in the order netstat lists them, each once.
pub fn parse_ibn(text: &str) -> Vec<IfaceSample> {
    let mut out: Vec<IfaceSample> = Vec::new();
    // Whether the record in `out` came from a <Link#N> row (which wins).
    let mut from_link: Vec<bool> = Vec::new();
    let mut tail: Option<Vec<String>> = None;
    for (i, line) in text.lines().enumerate() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.first() == Some(&"Name") && tokens.contains(&"Ibytes") {
            tail = tokens
                .iter()
                .position(|t| *t == "Address")
                .map(|a| tokens[a + 1..].iter().map(|s| s.to_string()).collect());
            continue;
        }
        let Some(cols) = tail.as_ref() else { continue };
        // name, mtu, network, [address], counters...
        if tokens.len() < 3 + cols.len() || tokens.len() > 4 + cols.len() {
            if !tokens.is_empty() {
                debug!(line = i + 1, "netstat -ibn: row shape not understood");
            }
            continue;
        }
        let counters = &tokens[tokens.len() - cols.len()..];
        let get = |name: &str| {
            cols.iter()
                .position(|c| c == name)
                .and_then(|k| counters[k].parse::<u64>().ok())
        };
        let (Some(rx), Some(tx)) = (get("Ibytes"), get("Obytes")) else {
            debug!(line = i + 1, "netstat -ibn: no byte counters");
            continue;
        };
        let raw_name = tokens[0];
        let name = raw_name.strip_suffix('*').unwrap_or(raw_name);
        let is_link = tokens[2].starts_with("<Link#");
        let sample = IfaceSample {
            name: name.to_owned(),
            is_up: !raw_name.ends_with('*'),
            rx_bytes: rx,
            tx_bytes: tx,
        };
        match out.iter().position(|s| s.name == name) {
            Some(k) if is_link && !from_link[k] => {
                out[k] = sample;
                from_link[k] = true;
            }
            Some(_) => {} // another address row repeating the same counters
            None => {
                out.push(sample);
                from_link.push(is_link);
            }
        }
    }
    out
}

/// The interface of the default route from `route -n get default`
/// (`  interface: en0`); `None` when there is no default route.
pub fn parse_route_default(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "interface")
            .then(|| value.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_default() {
        let text = "   route to: default\ndestination: default\n  interface: en0\n      flags: <UP,GATEWAY,DONE>\n";
        assert_eq!(parse_route_default(text).as_deref(), Some("en0"));
        assert_eq!(
            parse_route_default("route: writing to routing socket: not in table\n"),
            None
        );
    }

    #[test]
    fn rows_without_header_are_ignored() {
        assert!(parse_ibn("lo0 16384 <Link#1> 1 0 2 3 0 4 0\n").is_empty());
        assert!(parse_ibn("").is_empty());
    }
}
