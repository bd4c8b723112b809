// Writes the runtime bytecode files of this folder (see README.md).
// Usage: node build.js <folder with the unpacked npm packages and solc installed> <assets folder>
'use strict';
const fs = require('fs');
const path = require('path');

const [work, assets] = process.argv.slice(2);
const solc = require(path.join(work, 'node_modules', 'solc'));

function strip(hex) {
  return hex.startsWith('0x') ? hex.slice(2) : hex;
}
function write(name, hex) {
  fs.writeFileSync(path.join(assets, name), strip(hex).toLowerCase() + '\n');
}
function artifact(pkg, file) {
  return JSON.parse(fs.readFileSync(path.join(work, pkg, 'package', file), 'utf8'));
}

// Compiled artifacts shipped in npm packages.
const oz = artifact('openzeppelin-contracts-4.9.6', 'build/contracts/ERC20PresetFixedSupply.json');
write('oz_erc20_preset_fixed_supply.runtime.hex', oz.deployedBytecode);

const pair = artifact('uniswap-v2-core-1.0.1', 'build/UniswapV2Pair.json');
write('uniswap_v2_pair.runtime.hex', pair.evm.deployedBytecode.object);
const factory = artifact('uniswap-v2-core-1.0.1', 'build/UniswapV2Factory.json');
write('uniswap_v2_factory.runtime.hex', factory.evm.deployedBytecode.object);

const router = artifact('uniswap-v2-periphery-1.1.0-beta.0', 'build/UniswapV2Router02.json');
write('uniswap_v2_router02.runtime.hex', router.evm.deployedBytecode.object);
// The router's two immutables (`factory`, then `WETH`, in declaration order and so in AST id
// order) are zero placeholders in the runtime code; list where they go.
const refs = router.evm.deployedBytecode.immutableReferences;
const ids = Object.keys(refs).map(Number).sort((a, b) => a - b);
if (ids.length !== 2) throw new Error('expected 2 immutables, found ' + ids.length);
const lines = ['factory', 'weth'].map((name, i) =>
  name + ' ' + refs[ids[i]].map((r) => { if (r.length !== 32) throw new Error('length'); return r.start; }).join(' '));
fs.writeFileSync(path.join(assets, 'uniswap_v2_router02.immutables.txt'), lines.join('\n') + '\n');

// Our own contracts, compiled with solc-js.
const sources = {};
for (const file of fs.readdirSync(path.join(assets, 'sol')).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(assets, 'sol', file), 'utf8') };
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'shanghai',
    outputSelection: { '*': { '*': ['evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join('\n'));
const snake = (s) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
for (const file of Object.keys(output.contracts)) {
  for (const [name, contract] of Object.entries(output.contracts[file])) {
    write(snake(name) + '.runtime.hex', contract.evm.deployedBytecode.object);
    if (name === 'Child') write('child.initcode.hex', contract.evm.bytecode.object);
  }
}
console.log('solc ' + solc.version());
