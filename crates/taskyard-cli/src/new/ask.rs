//! `taskyard new` asking for the app: its folder, its store and its template. It asks on a
//! terminal when no folder is named, and always with `--ask`. On a terminal the store and
//! the template are picked from a list with the arrow keys (Enter takes one, Esc or `q`
//! stops, nothing written); from a pipe each is one question a line. An answer it cannot
//! take is said why, and asked again; an empty one takes the value in brackets; the
//! input's end stops it, nothing written.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::ValueEnum;

use super::{AppArgs, Store, Template, app};

/// The folder's question.
const FOLDER: &str = "The app's folder (letters, digits, `-` and `_`)";

/// The store's question, and what each store is.
const STORE: &str = "Where runs are kept";
fn store_about(store: &Store) -> &'static str {
    match store {
        Store::Sqlite => "a SQLite file in .taskyard/, nothing to set up",
        Store::Postgres => "PostgreSQL, through TASKYARD_DATABASE_URL",
    }
}

/// The template's question, and what each template holds.
const TEMPLATE: &str = "What the app holds";
fn template_about(template: &Template) -> &'static str {
    match template {
        Template::Minimal => "a task, a route, an API route, a middleware and a schedule",
        Template::Full => "the minimal app and a lifecycle task",
    }
}

/// A folder's answer taken, or why not.
fn folder(answer: &str) -> Result<PathBuf, String> {
    let folder = PathBuf::from(answer);
    app::check_folder(&folder).map(|_| folder)
}

/// `args` with what its flags did not say asked on `output` and read from `input`: the
/// folder unless named, then the store and the template, each offering its flag's value.
pub fn ask(mut args: AppArgs, input: &mut impl BufRead, output: &mut impl Write) -> Result<AppArgs, String> {
    let mut prompt = Prompt { input, output };
    if args.name.is_none() {
        args.name = Some(prompt.until_taken(FOLDER, None, folder)?);
    }
    args.store = prompt.choice(STORE, args.store, store_about)?;
    args.template = prompt.choice(TEMPLATE, args.template, template_about)?;
    Ok(args)
}

/// [`ask`] on the terminal (drawn on stderr): the folder typed, said why and asked again
/// when it cannot be taken; the store and the template picked from lists, the cursor on
/// each flag's value.
pub fn ask_on_terminal(mut args: AppArgs) -> Result<AppArgs, String> {
    let theme = dialoguer::theme::ColorfulTheme::default();
    let failed = |error: dialoguer::Error| format!("cannot ask on the terminal: {error}");
    if args.name.is_none() {
        let answer: String = dialoguer::Input::with_theme(&theme)
            .with_prompt(FOLDER)
            .validate_with(|answer: &String| folder(answer.trim()).map(|_| ()))
            .interact_text()
            .map_err(failed)?;
        args.name = Some(folder(answer.trim())?);
    }
    args.store = pick(&theme, STORE, args.store, store_about)?;
    args.template = pick(&theme, TEMPLATE, args.template, template_about)?;
    Ok(args)
}

/// One of `V`'s values picked from a list on the terminal, the cursor on `default`.
fn pick<V: ValueEnum>(
    theme: &dyn dialoguer::theme::Theme,
    question: &str,
    default: V,
    about: impl Fn(&V) -> &'static str,
) -> Result<V, String> {
    let values = V::value_variants();
    let items = values
        .iter()
        .map(|value| format!("{} — {}", name(value), about(value)));
    let at = values
        .iter()
        .position(|value| name(value) == name(&default))
        .unwrap_or(0);
    let picked = dialoguer::Select::with_theme(theme)
        .with_prompt(question)
        .items(items)
        .default(at)
        .interact_opt()
        .map_err(|error| format!("cannot ask on the terminal: {error}"))?;
    picked
        .and_then(|at| values.get(at).cloned())
        .ok_or_else(|| format!("no answer to \"{question}\" (nothing was written)"))
}

/// A value's name, as its flag takes it.
fn name<V: ValueEnum>(value: &V) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

struct Prompt<'a, R, W> {
    input: &'a mut R,
    output: &'a mut W,
}

impl<R: BufRead, W: Write> Prompt<'_, R, W> {
    /// One of `V`'s values, by name or number, `default` when the answer is empty.
    fn choice<V: ValueEnum>(
        &mut self,
        question: &str,
        default: V,
        about: impl Fn(&V) -> &'static str,
    ) -> Result<V, String> {
        let values = V::value_variants();
        let mut lines = vec![format!("{question}:")];
        for (at, value) in values.iter().enumerate() {
            lines.push(format!("  {}. {} — {}", at + 1, name(value), about(value)));
        }
        self.say(&lines.join("\n"))?;
        let names: Vec<String> = values.iter().map(name).collect();
        self.until_taken(
            &format!("Choose {}", names.join(" or ")),
            Some(&name(&default)),
            |answer| {
                let by_number = answer
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| values.get(n.checked_sub(1)?));
                by_number
                    .or_else(|| values.iter().find(|value| name(*value) == answer))
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "`{answer}` is none of them: answer {} or its number",
                            names.join(", ")
                        )
                    })
            },
        )
    }

    /// Asks `question` until `take` takes the answer (or the default, for an empty one).
    fn until_taken<T>(
        &mut self,
        question: &str,
        default: Option<&str>,
        take: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, String> {
        loop {
            match default {
                Some(default) => write!(self.output, "{question} [{default}]: "),
                None => write!(self.output, "{question}: "),
            }
            .and_then(|()| self.output.flush())
            .map_err(|e| format!("cannot ask: {e}"))?;
            let mut line = String::new();
            let read = self
                .input
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the answer: {e}"))?;
            if read == 0 {
                return Err(format!("no answer to \"{question}\" (nothing was written)"));
            }
            let answer = match line.trim() {
                "" => default.unwrap_or(""),
                answer => answer,
            };
            if answer.is_empty() {
                continue;
            }
            match take(answer) {
                Ok(taken) => return Ok(taken),
                Err(why) => self.say(&why)?,
            }
        }
    }

    fn say(&mut self, text: &str) -> Result<(), String> {
        writeln!(self.output, "{text}").map_err(|e| format!("cannot ask: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(args: AppArgs, answers: &str) -> (Result<AppArgs, String>, String) {
        let mut output = Vec::new();
        let asked = ask(args, &mut answers.as_bytes(), &mut output);
        (asked, String::from_utf8_lossy(&output).into_owned())
    }

    fn nothing_named() -> AppArgs {
        AppArgs {
            name: None,
            store: Store::Sqlite,
            template: Template::Minimal,
            path: None,
            ask: false,
        }
    }

    #[test]
    fn each_answer_is_taken_by_name_number_or_default_and_a_bad_one_asked_again() {
        let temp = tempfile::tempdir().expect("tempdir");
        let folder = temp.path().join("shop");
        let answers = format!("9lives\n\n{}\nmysql\n2\n\n", folder.display());
        let (asked, said) = asked(nothing_named(), &answers);
        let args = asked.expect("taken");
        assert_eq!(args.name, Some(folder));
        assert!(args.store == Store::Postgres && args.template == Template::Minimal);
        assert!(said.contains("`9lives` cannot be a crate's name"), "{said}");
        assert!(
            said.contains("`mysql` is none of them: answer sqlite, postgres or its number"),
            "{said}"
        );
        assert!(
            said.contains("  2. postgres — PostgreSQL, through TASKYARD_DATABASE_URL"),
            "{said}"
        );
        assert!(said.contains("Choose minimal or full [minimal]: "), "{said}");
        // The folder was asked three times: a bad name, an empty answer, then taken.
        assert_eq!(said.matches("The app's folder").count(), 3, "{said}");
    }

    #[test]
    fn a_named_folder_is_not_asked_and_the_flags_are_the_defaults() {
        let mut args = nothing_named();
        args.name = Some(PathBuf::from("shop"));
        args.template = Template::Full;
        let (asked, said) = asked(args, "postgres\n\n");
        let args = asked.expect("taken");
        assert!(args.store == Store::Postgres && args.template == Template::Full);
        assert!(!said.contains("folder"), "{said}");
        assert!(said.contains("[full]: "), "{said}");
    }

    #[test]
    fn the_input_ending_stops_it() {
        let (asked, _) = asked(nothing_named(), "");
        let error = asked.err().expect("stopped");
        assert!(error.contains("no answer to \"The app's folder"), "{error}");
        assert!(error.contains("nothing was written"), "{error}");
    }
}
