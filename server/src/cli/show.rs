//! `kiln show NAME [--modelfile|--parameters|--template|--system|--license] [-v]`: `POST
//! /api/show` printed as `ollama show` prints it.

use kiln_core::request::{ShowRequest, ShowResponse};
use serde_json::Value;

use super::CliError;
use super::client::Client;
use super::format::table;

/// `kiln show` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The model.
    pub name: String,
    /// Show the license.
    #[arg(long)]
    pub license: bool,
    /// Show a Modelfile that `kiln create -f` reads back to the same model.
    #[arg(long)]
    pub modelfile: bool,
    /// Show the parameters.
    #[arg(long)]
    pub parameters: bool,
    /// Show the template.
    #[arg(long)]
    pub template: bool,
    /// Show the system message.
    #[arg(long)]
    pub system: bool,
    /// Add the metadata and tensors.
    #[arg(short, long)]
    pub verbose: bool,
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // As `ollama show -v`: a long array (a vocabulary) shows the items that fit in a
        // narrow column, then `...`.
        Value::Array(items) => {
            let mut shown = Vec::new();
            let mut width = 1;
            for item in items {
                let text = cell(item);
                if !shown.is_empty() && width + text.len() + 2 > 10 {
                    shown.push("...".to_owned());
                    break;
                }
                width += text.len() + 2;
                shown.push(text);
            }
            format!("[{}]", shown.join(", "))
        }
        other => other.to_string(),
    }
}

fn section(out: &mut String, title: &str, rows: &[Vec<String>]) {
    out.push_str("  ");
    out.push_str(title);
    out.push('\n');
    out.push_str(&table(None, rows));
    out.push('\n');
}

/// The first two non-empty lines, trimmed, then `...` when there are more.
fn head(text: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut rows: Vec<Vec<String>> = lines.iter().take(2).map(|l| vec![String::new(), (*l).to_owned()]).collect();
    if lines.len() > 2 {
        rows.push(vec![String::new(), "...".to_owned()]);
    }
    rows
}

/// `ollama show`'s default sections.
#[must_use]
pub fn render(r: &ShowResponse, verbose: bool) -> String {
    let row = |k: &str, v: String| vec![String::new(), k.to_owned(), v];
    let mut out = String::new();
    let mut model = Vec::new();
    if r.model_info.is_empty() {
        model.push(row("architecture", r.details.family.clone()));
        model.push(row("parameters", r.details.parameter_size.clone()));
    } else {
        let arch = r.model_info.get("general.architecture").map(cell).unwrap_or_default();
        let params = if r.details.parameter_size.is_empty() {
            r.model_info.get("general.parameter_count").map(cell).unwrap_or_default()
        } else {
            r.details.parameter_size.clone()
        };
        model.push(row("architecture", arch.clone()));
        model.push(row("parameters", params));
        for (key, label) in [("context_length", "context length"), ("embedding_length", "embedding length")] {
            if let Some(v) = r.model_info.get(&format!("{arch}.{key}")) {
                model.push(row(label, cell(v)));
            }
        }
    }
    model.push(row("quantization", r.details.quantization_level.clone()));
    section(&mut out, "Model", &model);
    if !r.capabilities.is_empty() {
        let rows: Vec<_> = r.capabilities.iter().map(|c| vec![String::new(), c.clone()]).collect();
        section(&mut out, "Capabilities", &rows);
    }
    if let Some(p) = r.parameters.as_deref().filter(|p| !p.is_empty()) {
        let rows: Vec<Vec<String>> = p
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| std::iter::once(String::new()).chain(l.split_whitespace().map(str::to_owned)).collect())
            .collect();
        section(&mut out, "Parameters", &rows);
    }
    if verbose {
        let rows: Vec<_> = r.model_info.iter().map(|(k, v)| row(k, cell(v))).collect();
        section(&mut out, "Metadata", &rows);
        if let Some(tensors) = &r.tensors {
            let rows: Vec<_> = tensors
                .iter()
                .map(|t| {
                    let shape = t.shape.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
                    vec![String::new(), t.name.clone(), t.ty.clone(), format!("[{shape}]")]
                })
                .collect();
            section(&mut out, "Tensors", &rows);
        }
    }
    if let Some(s) = r.system.as_deref().filter(|s| !s.is_empty()) {
        section(&mut out, "System", &head(s));
    }
    if let Some(l) = r.license.as_deref().filter(|l| !l.is_empty()) {
        section(&mut out, "License", &head(l));
    }
    out
}

/// Runs `kiln show`.
///
/// # Errors
/// More than one content flag, or the server's error.
pub fn run(args: &ShowArgs) -> Result<(), CliError> {
    let flags = [args.license, args.modelfile, args.parameters, args.system, args.template];
    if flags.iter().filter(|f| **f).count() > 1 {
        return Err(CliError::Message(
            "only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified"
                .to_owned(),
        ));
    }
    // The name goes in `name`, the field every Ollama version reads.
    let req = ShowRequest { model: None, name: Some(args.name.clone()), verbose: Some(args.verbose) };
    let r: ShowResponse = Client::from_env()?.send("POST", "/api/show", &req)?;
    if args.license {
        println!("{}", r.license.unwrap_or_default());
    } else if args.modelfile {
        println!("{}", r.modelfile);
    } else if args.parameters {
        println!("{}", r.parameters.unwrap_or_default());
    } else if args.system {
        print!("{}", r.system.unwrap_or_default());
    } else if args.template {
        print!("{}", r.template);
    } else {
        print!("{}", render(&r, args.verbose));
    }
    Ok(())
}
