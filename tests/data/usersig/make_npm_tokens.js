// Generates tests/data/usersig/npm_tokens.json: UserSig tokens made by Tencent's official npm package
// `tls-sig-api-v2` (1.0.2), the reference the UserSig codec must accept (SPEC section 2).
// Not run by CI. To regenerate, outside the repository:
//   mkdir -p /tmp/sigs && cd /tmp/sigs && npm init -y && npm install tls-sig-api-v2
//   NODE_PATH=/tmp/sigs/node_modules node /work/main/tests/data/usersig/make_npm_tokens.js \
//     > /work/main/tests/data/usersig/npm_tokens.json
// The package reads Date.now(), so it is pinned to a fixed instant to make the tokens deterministic.
'use strict';
const fixed_ms = 1700000000123;  // 2023-11-14T22:13:20.123Z: the token time is floor(ms / 1000)
Date.now = () => fixed_ms;

const TLSSigAPIv2 = require('tls-sig-api-v2');
const pkg = require('tls-sig-api-v2/package.json');

const key_a = '5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e';
const key_b = 'a-short-key';
// Longer than the 64-byte SHA-256 block: HMAC hashes such keys first.
const key_c = 'k'.repeat(100) + '0123456789abcdef';

// kind: "usersig" = genUserSig, "privatemapkey" = genPrivateMapKey (numeric room, userbuf),
//       "privatemapkey_str" = genPrivateMapKeyWithStringRoomID (string room, userbuf).
const cases = [
  {sdkappid: 1400000001, key: key_a, identifier: 'administrator', expire: 86400 * 180, kind: 'usersig'},
  {sdkappid: 1400000001, key: key_a, identifier: 'xiaojun', expire: 86400, kind: 'usersig'},
  {sdkappid: 1400000001, key: key_a, identifier: 'user_01-x', expire: 300, kind: 'usersig'},
  {sdkappid: 1400000001, key: key_a, identifier: 'zero_expire', expire: 0, kind: 'usersig'},
  {sdkappid: 20000123, key: key_b, identifier: 'administrator', expire: 604800, kind: 'usersig'},
  {sdkappid: 4294967295, key: key_c, identifier: 'max-appid', expire: 3600, kind: 'usersig'},
  {sdkappid: 1400000001, key: key_a, identifier: '用户-ünï', expire: 3600, kind: 'usersig'},
  {sdkappid: 1400000001, key: key_a, identifier: 'q"uote\\back', expire: 3600, kind: 'usersig'},
  {sdkappid: 1400000001, key: key_a, identifier: 'xiaojun', expire: 86400 * 180, kind: 'privatemapkey',
   room: 10000, privilege: 255},
  {sdkappid: 1400000001, key: key_a, identifier: 'roomuser', expire: 300, kind: 'privatemapkey_str',
   room: '1000000040', privilege: 42},
];

const tokens = cases.map((c) => {
  const api = new TLSSigAPIv2.Api(c.sdkappid, c.key);
  let token;
  let userbuf = null;
  if (c.kind === 'usersig') {
    token = api.genUserSig(c.identifier, c.expire);
  } else if (c.kind === 'privatemapkey') {
    userbuf = api._genUserbuf(c.identifier, c.room, c.expire, c.privilege, 0, null);
    token = api.genPrivateMapKey(c.identifier, c.expire, c.room, c.privilege);
  } else {
    userbuf = api._genUserbuf(c.identifier, 0, c.expire, c.privilege, 0, c.room);
    token = api.genPrivateMapKeyWithStringRoomID(c.identifier, c.expire, c.room, c.privilege);
  }
  const out = {
    kind: c.kind,
    sdkappid: c.sdkappid,
    key: c.key,
    identifier: c.identifier,
    time: Math.floor(fixed_ms / 1000),
    expire: c.expire,
  };
  if (userbuf !== null) out.userbuf_base64 = Buffer.from(userbuf).toString('base64');
  out.token = token;
  return out;
});

process.stdout.write(JSON.stringify({
  generator: `npm ${pkg.name} ${pkg.version} on node ${process.version}`,
  now: Math.floor(fixed_ms / 1000),
  tokens: tokens,
}, null, 2) + '\n');
