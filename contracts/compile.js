// Compile every contracts/*.sol with solc-js (the pinned npm `solc`) into contracts/build/<Name>.json:
// ABI, creation and runtime bytecode, the compiler's exact version and settings, and the
// source's sha256. With --check, compile and compare with the committed files instead
// (exit 1 naming each difference). Run through scripts/compile-contracts.
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const solc = require("solc");

const here = __dirname;
const check = process.argv.includes("--check");
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};
const sources = {};
for (const name of fs.readdirSync(here).filter((n) => n.endsWith(".sol")).sort()) {
  sources[name] = { content: fs.readFileSync(path.join(here, name), "utf8") };
}
const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings })));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(2);
}
let differences = 0;
fs.mkdirSync(path.join(here, "build"), { recursive: true });
for (const file of Object.keys(sources)) {
  for (const [contract, out] of Object.entries(output.contracts[file])) {
    const artifact = {
      contract, source: file,
      source_sha256: crypto.createHash("sha256").update(sources[file].content).digest("hex"),
      compiler: "solc-js " + solc.version(), settings: { ...settings, outputSelection: undefined },
      abi: out.abi, bytecode: "0x" + out.evm.bytecode.object,
      deployedBytecode: "0x" + out.evm.deployedBytecode.object,
    };
    const text = JSON.stringify(artifact, null, 1) + "\n";
    const target = path.join(here, "build", contract + ".json");
    if (check) {
      const committed = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
      if (committed !== text) {
        console.error(`differs from the committed artifact: ${path.relative(process.cwd(), target)}`);
        differences += 1;
      }
    } else {
      fs.writeFileSync(target, text);
      console.log(`${contract}: ${out.evm.deployedBytecode.object.length / 2} bytes (${solc.version()})`);
    }
  }
}
process.exit(differences ? 1 : 0);
