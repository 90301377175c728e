//! `harness run --html FILE` writes a page a real browser draws: headless Chromium (the Debian
//! package `chromium`) renders the page of seed 002 and of its broken twin. The DOM it builds
//! must hold the topology drawing with every node and link, and a drawing per path; the
//! screenshot must show the path colours (out, replies, and for the twin the red of where
//! packets died) in amounts only drawn paths give — the page's text and borders use other
//! shades, and the legend's swatches are far below the thresholds. Without chromium, or where
//! namespaces cannot be created, the trials are ignored, not passed; under `CI=true` they fail
//! and say what to install or allow (tests/common/mod.rs).
//!
//! The timeline trial renders the page of failover/carrier-live (an event during traffic): the
//! DOM must hold the timeline with the event and a row per flow, every link in it leading to a
//! place on the page; at 1280 and 800 px wide the drawing must fit its section and none of its
//! texts may overlap another or a bar (a probe script, added to a copy of the page only,
//! measures them); the screenshot must show the bars' uplink colours.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use harness::model::repo_path;
use harness::report::html::{BACK, DIED, OUT, UPLINK_COLOURS};
use libtest_mimic::{Arguments, Failed};

/// How long Chromium gets for one page.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2000;
/// Pixels of a path colour a drawn page shows at least: one flow's drawing gives some 600 of
/// each, the legend's swatches some 50 (the control below checks the page without its path
/// drawings stays under this).
const MIN_PIXELS: usize = 300;

/// One page to render, and what it must show.
struct Case {
    name: &'static str,
    scenario: &'static str,
    /// Path colours its screenshot must show.
    colours: &'static [(&'static str, &'static str)],
    /// Failing flows drawn one by one.
    failing: usize,
}

const CASES: [Case; 2] = [
    Case {
        name: "seed 002: every flow's path, out and back",
        scenario: "scenarios/dual-isp.yaml",
        colours: &[("out", OUT), ("replies", BACK)],
        failing: 0,
    },
    // Without --restore-mark, wan2 flows' later packets leave via wan1 and die at ISP1.
    Case {
        name: "seed 002 without --restore-mark: where packets died, in red",
        scenario: "scenarios/dual-isp-no-restore.yaml",
        colours: &[("out", OUT), ("replies", BACK), ("died", DIED)],
        failing: 4,
    },
];

/// `chromium` on PATH, or a failure that says how to get it.
fn chromium() -> Result<PathBuf, Failed> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "`chromium` is not on PATH: this test renders the --html page in headless Chromium; install it with `apt-get install -y chromium` (.ci/run does)"
                .into()
        })
}

/// Runs `cmd` with its output in `out`, killing it past the deadline.
fn run_to_deadline(mut cmd: Command, out: &Path, what: &str) -> Result<String, Failed> {
    let file = File::create(out).map_err(|e| format!("creating `{}`: {e}", out.display()))?;
    let err_path = out.with_extension("stderr");
    let err = File::create(&err_path).map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("running {what}: {e}"))?;
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} did not finish within {CHROMIUM_TIMEOUT:?}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if !status.success() {
        return Err(format!("{what} failed ({status}):\n{stderr}").into());
    }
    Ok(stderr)
}

/// `chromium --headless …` on the page, with a profile of its own in `dir`.
fn chromium_on(dir: &Path, page: &Path, args: &[String], out: &Path) -> Result<String, Failed> {
    let mut cmd = Command::new(chromium()?);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()))
    .args(args)
    .arg(format!("file://{}", page.display()));
    run_to_deadline(cmd, out, "chromium")
}

/// The screenshot's pixels, 8-bit RGB.
fn pixels(png_file: &Path) -> Result<(u32, u32, Vec<[u8; 3]>), Failed> {
    let f = File::open(png_file).map_err(|e| format!("opening `{}`: {e}", png_file.display()))?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(f));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec
        .read_info()
        .map_err(|e| format!("`{}` is not a PNG: {e}", png_file.display()))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => return Err(format!("unexpected PNG colour type {other:?}").into()),
    };
    let px = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    Ok((info.width, info.height, px))
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).expect("a #rrggbb colour");
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// Pixels within a few levels of `colour` on every channel (antialiased edges are not).
fn count(px: &[[u8; 3]], colour: [u8; 3]) -> usize {
    px.iter()
        .filter(|p| (0..3).all(|i| p[i].abs_diff(colour[i]) <= 3))
        .count()
}

fn check(c: &Case) -> Result<(), Failed> {
    // Fail on a missing browser before spending a lab on it.
    chromium()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let page = dir.path().join("result.html");
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--html"])
        .arg(&page)
        .arg(c.scenario)
        .current_dir(repo_path(""))
        .output()
        .map_err(|e| format!("running the harness: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`harness run --html … {}` exited {:?}:\n{}{}",
            c.scenario,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }

    // The DOM Chromium built: the topology drawing with every node and link.
    let dom_file = dir.path().join("dom.html");
    chromium_on(dir.path(), &page, &["--dump-dom".into()], &dom_file)?;
    let dom = std::fs::read_to_string(&dom_file).map_err(|e| e.to_string())?;
    let start = dom
        .find("<svg class=\"topo\"")
        .ok_or_else(|| format!("no topology drawing in the rendered DOM:\n{dom}"))?;
    let topo_svg = &dom[start..start + dom[start..].find("</svg>").unwrap_or(0)];
    let plan = harness::model::load(&repo_path(c.scenario)).map_err(|e| e.to_string())?;
    for n in &plan.topology.nodes {
        if !topo_svg.contains(&format!("data-node=\"{}\"", n.name)) {
            return Err(format!("node `{}` missing from the drawing:\n{topo_svg}", n.name).into());
        }
    }
    for l in &plan.topology.links {
        if !topo_svg.contains(&format!("data-link=\"{}\"", l.name)) {
            return Err(format!("link `{}` missing from the drawing:\n{topo_svg}", l.name).into());
        }
    }
    let paths = dom.matches("<svg class=\"path\"").count();
    let failing = dom.matches("class=\"flow bad\"").count();
    if paths < 2 || failing != c.failing {
        return Err(format!(
            "expected a path drawing per path and {} failing flows, found {paths} drawings and {failing} failing flows",
            c.failing
        )
        .into());
    }
    if c.failing > 0 && !dom.contains("data-dir=\"died\"") {
        return Err("no link drawn where packets died".into());
    }

    // The screenshot: non-trivial, with the paths' colours.
    let (shot, bytes, w, h, px) = screenshot(dir.path(), &page, "page")?;
    let distinct: std::collections::HashSet<[u8; 3]> = px.iter().copied().collect();
    if (w, h) != (WIDTH, HEIGHT) || bytes < 20_000 || distinct.len() < 50 {
        return Err(format!(
            "the screenshot looks empty: {w}x{h}, {bytes} bytes, {} colours",
            distinct.len()
        )
        .into());
    }
    let counts: Vec<(&str, &str, usize)> = c
        .colours
        .iter()
        .map(|(what, hex)| (*what, *hex, count(&px, rgb(hex))))
        .collect();
    if counts.iter().any(|(_, _, n)| *n < MIN_PIXELS) {
        let keep = std::env::temp_dir().join(format!(
            "harness-html-{}.png",
            c.scenario.replace(['/', '.'], "_")
        ));
        let _ = std::fs::copy(&shot, &keep);
        return Err(format!(
            "the screenshot lacks the path colours (at least {MIN_PIXELS} pixels each): {}; screenshot kept as `{}`",
            shown(&counts),
            keep.display()
        )
        .into());
    }

    // The control: the same page without its path drawings stays under the thresholds, so
    // the counts above come from the drawings.
    let text = std::fs::read_to_string(&page).map_err(|e| e.to_string())?;
    let bare = dir.path().join("bare.html");
    std::fs::write(&bare, without_path_drawings(&text)).map_err(|e| e.to_string())?;
    let (.., px) = screenshot(dir.path(), &bare, "bare")?;
    let control: Vec<(&str, &str, usize)> = c
        .colours
        .iter()
        .map(|(what, hex)| (*what, *hex, count(&px, rgb(hex))))
        .collect();
    if control.iter().any(|(_, _, n)| *n >= MIN_PIXELS) {
        return Err(format!(
            "without its path drawings the page still shows {MIN_PIXELS} pixels of a path colour: {}; the check cannot tell a drawn path",
            shown(&control)
        )
        .into());
    }
    Ok(())
}

fn shown(counts: &[(&str, &str, usize)]) -> String {
    counts
        .iter()
        .map(|(what, hex, n)| format!("{what} {hex}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page with every `<svg class="path">…</svg>` taken out.
fn without_path_drawings(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find("<svg class=\"path\"") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("</svg>").map_or("", |j| &rest[i + j + 6..]);
    }
    out.push_str(rest);
    out
}

type Shot = (PathBuf, u64, u32, u32, Vec<[u8; 3]>);

/// Chromium's screenshot of the page, `WIDTH`×`HEIGHT`: the file, its size and its pixels.
fn screenshot(dir: &Path, page: &Path, name: &str) -> Result<Shot, Failed> {
    let shot = dir.join(format!("{name}.png"));
    chromium_on(
        dir,
        page,
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={WIDTH},{HEIGHT}"),
        ],
        &dir.join(format!("{name}.log")),
    )?;
    let bytes = std::fs::metadata(&shot)
        .map_err(|e| format!("chromium wrote no screenshot `{}`: {e}", shot.display()))?
        .len();
    let (w, h, px) = pixels(&shot)?;
    Ok((shot, bytes, w, h, px))
}

/// A run with an event during traffic, whose page has a timeline.
const TIMELINE: &str = "scenarios/failover/carrier-live.yaml";
/// Window widths the timeline must fit.
const TIMELINE_WIDTHS: [u32; 2] = [1280, 800];

/// Added to a copy of the page before `</body>` (the page itself runs no script): measures
/// the timeline against its section and its texts against each other and the bars, and
/// writes what it found into `<pre id="probe">`, a line each, problems starting `problem:`.
const PROBE: &str = r#"<script>
(function () {
  var out = [];
  var svg = document.querySelector('svg.timeline');
  if (!svg) {
    out.push('problem: no svg.timeline in the page');
  } else {
    var sec = svg.closest('section'), cs = getComputedStyle(sec);
    var r = svg.getBoundingClientRect(), s = sec.getBoundingClientRect();
    var left = s.left + parseFloat(cs.borderLeftWidth) + parseFloat(cs.paddingLeft);
    var right = s.right - parseFloat(cs.borderRightWidth) - parseFloat(cs.paddingRight);
    var f = function (x) { return x.toFixed(1); };
    out.push('window ' + window.innerWidth + ', drawing ' + f(r.left) + '..' + f(r.right) + ' (' + f(r.width) + ' x ' + f(r.height) + '), section content ' + f(left) + '..' + f(right));
    if (r.width < 100 || r.height < 100) out.push('problem: the drawing is ' + f(r.width) + ' x ' + f(r.height));
    if (r.left < left - 0.5 || r.right > right + 0.5) out.push('problem: the drawing is wider than its section');
    if (r.right > document.documentElement.clientWidth + 0.5) out.push('problem: the drawing reaches past the window');
    var items = [];
    svg.querySelectorAll('text, rect.tl-bar').forEach(function (e) {
      var text = e.tagName.toLowerCase() === 'text';
      var row = e.closest('[data-flow]');
      items.push({
        what: (text ? 'text "' + e.textContent + '"' : 'bar') + (row ? ' of flow ' + row.getAttribute('data-flow') : ''),
        text: text,
        b: e.getBoundingClientRect()
      });
    });
    items.forEach(function (a) {
      if (a.b.left < r.left - 0.5 || a.b.right > r.right + 0.5 || a.b.top < r.top - 0.5 || a.b.bottom > r.bottom + 0.5)
        out.push('problem: ' + a.what + ' is outside the drawing');
    });
    for (var i = 0; i < items.length; i++) {
      for (var j = i + 1; j < items.length; j++) {
        var a = items[i], b = items[j];
        if (!a.text && !b.text) continue;
        var w = Math.min(a.b.right, b.b.right) - Math.max(a.b.left, b.b.left);
        var h = Math.min(a.b.bottom, b.b.bottom) - Math.max(a.b.top, b.b.top);
        if (w > 0.5 && h > 0.5) out.push('problem: ' + a.what + ' overlaps ' + b.what);
      }
    }
    out.push('measured ' + items.length + ' texts and bars');
  }
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = out.join('\n');
  document.body.appendChild(pre);
})();
</script>"#;

fn check_timeline() -> Result<(), Failed> {
    chromium()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let page = dir.path().join("result.html");
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--html"])
        .arg(&page)
        .arg(TIMELINE)
        .current_dir(repo_path(""))
        .output()
        .map_err(|e| format!("running the harness: {e}"))?;
    // The timeline is drawn whatever the verdict: a run that failed (1) still wrote its page.
    if !matches!(out.status.code(), Some(0 | 1)) || !page.is_file() {
        return Err(format!(
            "`harness run --html … {TIMELINE}` exited {:?}:\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }

    // The DOM: the timeline, its event, a row per flow, and links that lead somewhere.
    let dom_file = dir.path().join("dom.html");
    chromium_on(dir.path(), &page, &["--dump-dom".into()], &dom_file)?;
    let dom = std::fs::read_to_string(&dom_file).map_err(|e| e.to_string())?;
    let start = dom
        .find("<svg class=\"timeline\"")
        .ok_or_else(|| format!("no timeline in the rendered DOM:\n{dom}"))?;
    let svg = &dom[start..start + dom[start..].find("</svg>").unwrap_or(0)];
    if svg.matches("data-event=\"wan1_dies\"").count() != 1 {
        return Err(format!("the event wan1_dies is not on the timeline once:\n{svg}").into());
    }
    let plan = harness::model::load(&repo_path(TIMELINE)).map_err(|e| e.to_string())?;
    let rows = svg.matches("class=\"tl-row\" data-flow=").count();
    if rows != plan.flows.len() {
        return Err(format!("{rows} rows on the timeline for {} flows", plan.flows.len()).into());
    }
    for f in &plan.flows {
        if !svg.contains(&format!("data-flow=\"{}\"", f.id)) {
            return Err(format!("flow {} has no row on the timeline", f.id).into());
        }
    }
    let mut links = 0;
    for (i, _) in svg.match_indices("href=\"#") {
        let target = &svg[i + 7..];
        let target = &target[..target.find('"').unwrap_or(0)];
        if !dom.contains(&format!("id=\"{target}\"")) {
            return Err(
                format!("the timeline links to #{target}, which is nowhere on the page").into(),
            );
        }
        links += 1;
    }
    if links == 0 {
        return Err("no row of the timeline links to its flow".into());
    }

    // The layout, measured at each width.
    let text = std::fs::read_to_string(&page).map_err(|e| e.to_string())?;
    let probed = dir.path().join("probed.html");
    std::fs::write(&probed, text.replace("</body>", &format!("{PROBE}</body>")))
        .map_err(|e| e.to_string())?;
    for w in TIMELINE_WIDTHS {
        let out = dir.path().join(format!("probe-{w}.html"));
        chromium_on(
            dir.path(),
            &probed,
            &["--dump-dom".into(), format!("--window-size={w},{HEIGHT}")],
            &out,
        )?;
        let dom = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
        let found = dom
            .split_once("<pre id=\"probe\">")
            .and_then(|(_, rest)| rest.split_once("</pre>"))
            .map(|(p, _)| p.replace("&quot;", "\"").replace("&amp;", "&"))
            .ok_or("the probe wrote nothing: did the page load?")?;
        if !found.starts_with(&format!("window {w},")) || found.contains("problem:") {
            return Err(format!("the timeline at {w} px wide:\n{found}").into());
        }
    }

    // The screenshot shows the bars, in the colours of the two uplinks; without the timeline
    // (the control) the page shows too little of them to pass.
    let colours = [("wan1", UPLINK_COLOURS[0]), ("wan2", UPLINK_COLOURS[1])];
    let (shot, .., px) = screenshot(dir.path(), &page, "timeline")?;
    let counts: Vec<(&str, &str, usize)> = colours
        .iter()
        .map(|(what, hex)| (*what, *hex, count(&px, rgb(hex))))
        .collect();
    if counts.iter().any(|(_, _, n)| *n < MIN_PIXELS) {
        let keep = std::env::temp_dir().join("harness-html-timeline.png");
        let _ = std::fs::copy(&shot, &keep);
        return Err(format!(
            "the screenshot lacks the bars' colours (at least {MIN_PIXELS} pixels each): {}; screenshot kept as `{}`",
            shown(&counts),
            keep.display()
        )
        .into());
    }
    let bare = dir.path().join("bare.html");
    let start = text.find("<svg class=\"timeline\"").unwrap_or(0);
    let end = start + text[start..].find("</svg>").map_or(0, |j| j + 6);
    std::fs::write(&bare, format!("{}{}", &text[..start], &text[end..]))
        .map_err(|e| e.to_string())?;
    let (.., px) = screenshot(dir.path(), &bare, "bare")?;
    let control: Vec<(&str, &str, usize)> = colours
        .iter()
        .map(|(what, hex)| (*what, *hex, count(&px, rgb(hex))))
        .collect();
    if control.iter().any(|(_, _, n)| *n >= MIN_PIXELS) {
        return Err(format!(
            "without its timeline the page still shows {MIN_PIXELS} pixels of a bar colour: {}",
            shown(&control)
        )
        .into());
    }
    Ok(())
}

fn main() -> ExitCode {
    // Not root: run as root of a user namespace of our own, as the scenario tests do.
    // Without the browser (or a lab) the trials are ignored, and under CI they fail.
    let needs = common::Needs::lab().and(&common::Needs::tool("chromium", "chromium"));
    let mut trials: Vec<_> = CASES
        .iter()
        .map(|c| needs.trial(format!("html: {}", c.name), move || check(c)))
        .collect();
    trials.push(needs.trial(
        "html: failover/carrier-live: the timeline, at 1280 and 800 px",
        check_timeline,
    ));
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}
