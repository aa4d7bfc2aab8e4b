import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headerNameLooksSecret } from './credentials.js';

test('headerNameLooksSecret: names that say they carry secrets, in any case; ordinary headers are not', () => {
  for (const h of ['Authorization', 'proxy-authorization', 'Cookie', 'set-cookie', 'X-API-Key', 'DPoP', 'X-Session-Id', 'X-Auth-User',
    'x-csrf-token', 'X-Amz-Security-Token', 'x-client-secret', 'x-db-password', 'X-Passwd', 'x-my-apikey', 'x-my-api_key',
    'X-Credentials', 'cookie2', 'WWW-Authenticate', 'x-goog-iap-jwt-assertion-token']) {
    assert.equal(headerNameLooksSecret(h), true, h);
  }
  for (const h of ['user-agent', 'accept-language', 'x-tenant', 'content-type', 'x-request-id', 'referer', 'x-forwarded-for', 'host']) {
    assert.equal(headerNameLooksSecret(h), false, h);
  }
});
