// How --webui-cmd and a pool's extra arguments become argv (no shell is involved).
import { describe, expect, it } from "vitest";
import { splitCommandLine } from "../../gpu-node/command-line.ts";

describe("splitCommandLine", () => {
  it("splits on any run of whitespace and ignores it at both ends", () => {
    expect(splitCommandLine("  python\tlaunch.py \n --api   --port {port} ")).toEqual(["python", "launch.py", "--api", "--port", "{port}"]);
  });

  it("gives no words for an empty or blank line", () => {
    expect(splitCommandLine("")).toEqual([]);
    expect(splitCommandLine(" \t ")).toEqual([]);
  });

  it("keeps spaces inside double quotes, and a quoted part joins the word around it", () => {
    expect(splitCommandLine('"/opt/my webui/python" launch.py --ckpt-dir="/models/Stable Diffusion"')).toEqual([
      "/opt/my webui/python",
      "launch.py",
      "--ckpt-dir=/models/Stable Diffusion",
    ]);
  });

  it("takes everything inside single quotes literally, backslashes and double quotes included", () => {
    expect(splitCommandLine(`echo 'a \\" b\\\\' "it's"`)).toEqual(["echo", 'a \\" b\\\\', "it's"]);
  });

  it('in double quotes, unescapes only \\" and \\\\', () => {
    expect(splitCommandLine('"say \\"hi\\" \\\\ \\n \\$HOME"')).toEqual(['say "hi" \\ \\n \\$HOME']);
  });

  it("outside quotes, a backslash makes the next character literal (a space, a quote)", () => {
    expect(splitCommandLine('my\\ webui\\\'s \\"x\\"')).toEqual(["my webui's", '"x"']);
  });

  it("keeps a trailing backslash as it is", () => {
    expect(splitCommandLine("dir\\")).toEqual(["dir\\"]);
  });

  it("keeps empty quoted words", () => {
    expect(splitCommandLine(`--prompt "" --neg ''`)).toEqual(["--prompt", "", "--neg", ""]);
  });

  it("does not expand or interpret shell syntax", () => {
    expect(splitCommandLine("run $HOME/x *.py | tee log; ~/y")).toEqual(["run", "$HOME/x", "*.py", "|", "tee", "log;", "~/y"]);
  });

  it("refuses an unterminated quote, naming the quote", () => {
    expect(() => splitCommandLine('python "launch.py')).toThrow(/unterminated " quote/);
    expect(() => splitCommandLine("python 'launch.py")).toThrow(/unterminated ' quote/);
  });
});
