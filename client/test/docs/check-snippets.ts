import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import ts from "typescript";

/** One ```ts or ```tsx code block of a markdown file. */
export interface Snippet {
  /** The markdown file, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the block's first code line in that file. */
  readonly line: number;
  readonly lang: "ts" | "tsx";
  readonly code: string;
}

/** A compiler error in a snippet, placed in its markdown file. */
export interface SnippetError {
  readonly snippet: Snippet;
  /** `README.md:412: Cannot find name 'other'.` */
  readonly message: string;
}

const FENCE = /^(\s*)```(\w*)\s*$/;

/**
 * The ```ts and ```tsx blocks of a markdown file, with their indentation (a block inside a list item)
 * removed. Other blocks (bash, text, untagged) are not code to check.
 */
export function extractSnippets(file: string, markdown: string): Snippet[] {
  const lines = markdown.split("\n");
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = "", lang = ""] = open;
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++;
    if (lang === "ts" || lang === "tsx") {
      const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
      snippets.push({ file, line: i + 2, lang, code: body.join("\n") });
    }
    i = end;
  }
  return snippets;
}

/**
 * Type-checks snippets with the repository's compiler settings (tsconfig.base.json), each as its own
 * module in a temporary directory under `root` (so `@shoal/client` resolves as it does for an app of
 * this workspace), with `prelude` as a global script beside them: it declares what the snippets
 * assume without showing (a `db` opened earlier in the README, an app's own functions). A name that
 * neither the snippet nor the prelude defines is an error, as in an app.
 */
export function checkSnippets(root: string, snippets: readonly Snippet[], prelude: string): SnippetError[] {
  const dir = join(root, ".test-results", `snippets-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  try {
    const files = new Map<string, Snippet>();
    snippets.forEach((s, n) => {
      const path = join(dir, `snippet-${n}.${s.lang}`);
      // `export {}` makes every snippet a module: top-level await works and names do not clash.
      writeFileSync(path, `${s.code}\nexport {};\n`);
      files.set(path, s);
    });
    const preludePath = join(dir, "prelude.d.ts");
    writeFileSync(preludePath, prelude);

    const configPath = join(root, "tsconfig.base.json");
    const config = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
    if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, "\n"));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(configPath));
    const program = ts.createProgram([preludePath, ...files.keys()], { ...parsed.options, noEmit: true });

    const errors: SnippetError[] = [];
    for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
      const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
      const source = diagnostic.file;
      const snippet = source ? files.get(source.fileName) : undefined;
      if (!source || !snippet) {
        // The prelude or the settings are broken: every snippet's result would be meaningless.
        const where = source ? `${relative(root, source.fileName)}: ` : "";
        throw new Error(`Snippet check setup failed: ${where}${text}`);
      }
      const { line } = source.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
      errors.push({ snippet, message: `${snippet.file}:${snippet.line + line}: ${text}` });
    }
    return errors;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The snippets of the markdown files `files` (paths relative to `root`). */
export function snippetsOf(root: string, files: readonly string[]): Snippet[] {
  return files.flatMap((f) => extractSnippets(f, readFileSync(join(root, f), "utf8")));
}
