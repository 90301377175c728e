//! Kept labs from the command line: `run --keep`'s hand-over to a keeper process,
//! `harness shell` (enter a node of one), `harness down` (remove them).

use super::{CliError, Finding};
use crate::lab::{keep as keeper, Lab};
use crate::model::Plan;

/// Hands the lab to a keeper process and says how to get in, on `out` (stdout, or stderr
/// when stdout carries `--json -`).
///
/// # Errors
/// [`CliError::Keep`] when the keeper could not take it.
pub fn hand_over(lab: Lab, plan: &Plan, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    let tables: Vec<(String, u32)> = plan
        .rules
        .iter()
        .flat_map(|r| r.tables.iter().cloned())
        .collect();
    let k = keeper::keep(lab, &plan.name, &plan.file, &tables)?;
    let mut text = format!(
        "\nlab `{}` kept (keeper process {}); enter a node with `harness shell NODE [-- COMMAND]`:\n",
        k.scenario, k.pid
    );
    let width = k.nodes.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (node, _) in &k.nodes {
        text += &format!(
            "  harness shell {node:width$}   # or: {}\n",
            k.nsenter(node).unwrap_or_default()
        );
    }
    text += "remove it with `harness down`\n";
    // The lab is kept whether or not this could be said.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    Ok(())
}

/// `harness shell NODE [-- COMMAND]`: becomes COMMAND (or a shell) inside the node; returns
/// only when it could not.
///
/// # Errors
/// [`CliError::Keep`] when there is no such lab or node; [`CliError::Exec`] when COMMAND
/// could not be started.
pub fn shell(node: &str, which: Option<&str>, command: &[String]) -> Result<Finding, CliError> {
    use std::os::unix::process::CommandExt;
    let k = keeper::find(which)?;
    keeper::enter(&k, node)?;
    let (program, args) = match command.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => {
            eprintln!(
                "harness: in node `{node}` of lab `{}`; `exit` to leave",
                k.scenario
            );
            (
                std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
                Vec::new(),
            )
        }
    };
    let err = std::process::Command::new(&program)
        .args(&args)
        .env("HARNESS_LAB", &k.scenario)
        .env("HARNESS_NODE", node)
        .exec();
    Err(CliError::Exec {
        program,
        node: node.to_string(),
        err,
    })
}

/// `harness down`: removes every kept lab, or the one `--lab` names. State files that are
/// not to be trusted are reported and their processes left alone.
///
/// # Errors
/// [`CliError::Keep`] when the lab named, or the state directory, is not to be found or
/// trusted; [`CliError::Several`] for the labs it could not remove and the state files it
/// refused, after removing the others.
pub fn down(which: Option<&str>) -> Result<Finding, CliError> {
    let (labs, refused) = match which {
        Some(_) => (vec![keeper::find(which)?], Vec::new()),
        None => {
            let l = keeper::list()?;
            (l.labs, l.refused)
        }
    };
    if labs.is_empty() && refused.is_empty() {
        println!("no kept lab");
    }
    let mut errors = Vec::new();
    for k in labs {
        match keeper::remove(&k) {
            Err(m) => errors.push(CliError::Keep(m)),
            Ok(holders) if holders.is_empty() => {
                println!("removed lab `{}` (keeper process {})", k.scenario, k.pid)
            }
            Ok(holders) => println!(
                "removed lab `{}` (keeper process {}); processes still inside keep its nodes \
                 alive until they exit: {}",
                k.scenario,
                k.pid,
                holders.join(", ")
            ),
        }
    }
    errors.extend(refused.into_iter().map(CliError::Keep));
    if errors.is_empty() {
        Ok(Finding::Held)
    } else {
        Err(CliError::Several(errors))
    }
}
