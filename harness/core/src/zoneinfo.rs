//! Parsing `/proc/zoneinfo` into the guest's zone layout, and classifying PFNs by zone.
//!
//! The zone bug this tool hunts is only visible when the guest has a populated Normal zone
//! above 4 GiB next to DMA32; [`check_layout`] asserts that at boot.

use serde::{Deserialize, Serialize};

use crate::program::PAGE_SIZE;

/// First PFN at or above 4 GiB.
pub const PFN_4G: u64 = (4 << 30) / PAGE_SIZE;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub node: u32,
    pub name: String,
    pub start_pfn: u64,
    pub spanned: u64,
    pub present: u64,
    pub managed: u64,
    pub free: u64,
}

impl Zone {
    pub fn end_pfn(&self) -> u64 {
        self.start_pfn + self.spanned
    }
}

/// Parses the text of `/proc/zoneinfo`. Unknown lines are ignored; zones missing a field keep 0.
pub fn parse(text: &str) -> Vec<Zone> {
    let mut zones: Vec<Zone> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Node ") {
            let mut parts = rest.splitn(2, ", zone");
            let node = parts
                .next()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            let name = parts.next().unwrap_or("").trim().to_string();
            zones.push(Zone {
                node,
                name,
                ..Zone::default()
            });
            continue;
        }
        let Some(z) = zones.last_mut() else { continue };
        let mut words = t.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.last()) else {
            continue;
        };
        let value: u64 = match value.parse() {
            Ok(v) => v,
            Err(_) => continue,
        };
        match (key, t.starts_with("pages free")) {
            (_, true) => z.free = value,
            ("spanned", _) => z.spanned = value,
            ("present", _) => z.present = value,
            ("managed", _) => z.managed = value,
            ("start_pfn:", _) => z.start_pfn = value,
            _ => {}
        }
    }
    zones
}

/// Why a guest's memory layout cannot show the zone bug.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("zone {0} is missing or empty: give the guest memory both below and above 4 GiB (e.g. -machine pc,max-ram-below-4g=1G -m 2G)")]
    Missing(&'static str),
    #[error("zone Normal starts at PFN {0:#x}, below 4 GiB: DMA32 pages and Normal pages cannot be told apart by address")]
    NormalBelow4G(u64),
    #[error("asked for {want} NUMA node(s), the guest has {got}: is CONFIG_NUMA (with ACPI SRAT) built in?")]
    Nodes { want: u32, got: u32 },
    #[error(
        "in the two-node topology node 1 must hold only memory above 4 GiB, but it has zone {0}"
    )]
    NodeOneBelow4G(String),
}

/// Checks the NUMA layout the topology asked for: `nodes` nodes with memory; with two, node 0
/// holds DMA32 and node 1 only Normal memory (all of it above 4 GiB).
pub fn check_nodes(zones: &[Zone], nodes: u32) -> Result<(), LayoutError> {
    let mut with_memory: Vec<u32> = zones
        .iter()
        .filter(|z| z.present > 0)
        .map(|z| z.node)
        .collect();
    with_memory.dedup();
    let got = with_memory.len() as u32;
    if got != nodes {
        return Err(LayoutError::Nodes { want: nodes, got });
    }
    if nodes == 2 {
        if let Some(z) = zones
            .iter()
            .find(|z| z.node == 1 && z.present > 0 && (z.name != "Normal" || z.start_pfn < PFN_4G))
        {
            return Err(LayoutError::NodeOneBelow4G(z.name.clone()));
        }
    }
    Ok(())
}

/// Checks that DMA32 and Normal are both populated and Normal lies above 4 GiB.
pub fn check_layout(zones: &[Zone]) -> Result<(), LayoutError> {
    let populated = |name: &str| zones.iter().find(|z| z.name == name && z.present > 0);
    populated("DMA32").ok_or(LayoutError::Missing("DMA32"))?;
    let normal = populated("Normal").ok_or(LayoutError::Missing("Normal"))?;
    if normal.start_pfn < PFN_4G {
        return Err(LayoutError::NormalBelow4G(normal.start_pfn));
    }
    Ok(())
}

/// The zone a PFN falls in, by the zones' spans.
pub fn zone_of(zones: &[Zone], pfn: u64) -> Option<&str> {
    zones
        .iter()
        .find(|z| z.spanned > 0 && pfn >= z.start_pfn && pfn < z.end_pfn())
        .map(|z| z.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Node 0, zone      DMA\n  per-node stats\n      nr_inactive_anon 0\n  pages free     3840\n        boost    0\n        min      11\n        spanned  4095\n        present  3998\n        managed  3840\n  start_pfn:           1\nNode 0, zone    DMA32\n  pages free     250000\n        spanned  258047\n        present  258047\n        managed  251000\n  start_pfn:           4096\nNode 0, zone   Normal\n  pages free     260000\n        spanned  262144\n        present  262144\n        managed  255000\n  start_pfn:           1048576\nNode 0, zone  Movable\n  pages free     0\n        spanned  0\n        present  0\n        managed  0\n  start_pfn:           0\n";

    #[test]
    fn node_counts_and_the_two_node_split_are_checked() {
        let mut zones = parse(SAMPLE);
        assert_eq!(check_nodes(&zones, 1), Ok(()));
        assert_eq!(
            check_nodes(&zones, 2),
            Err(LayoutError::Nodes { want: 2, got: 1 })
        );
        zones[2].node = 1;
        assert_eq!(check_nodes(&zones, 2), Ok(()));
        zones[1].node = 1;
        assert_eq!(
            check_nodes(&zones, 2),
            Err(LayoutError::NodeOneBelow4G("DMA32".into()))
        );
    }

    #[test]
    fn parses_zones_and_checks_layout() {
        let zones = parse(SAMPLE);
        assert_eq!(zones.len(), 4);
        assert_eq!(zones[2].name, "Normal");
        assert_eq!(zones[2].start_pfn, PFN_4G);
        assert_eq!(zones[1].free, 250000);
        assert_eq!(check_layout(&zones), Ok(()));
        assert_eq!(zone_of(&zones, PFN_4G + 5), Some("Normal"));
        assert_eq!(zone_of(&zones, 5000), Some("DMA32"));
        assert_eq!(zone_of(&zones, PFN_4G * 2), None);
    }

    #[test]
    fn a_guest_without_normal_is_refused() {
        let zones: Vec<Zone> = parse(SAMPLE)
            .into_iter()
            .filter(|z| z.name != "Normal")
            .collect();
        assert_eq!(check_layout(&zones), Err(LayoutError::Missing("Normal")));
    }
}
