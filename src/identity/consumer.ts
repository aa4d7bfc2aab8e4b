// The consumer types, in a leaf module: IdentityEnv (env.ts) names ConsumerDirectory, and consumers.ts
// (which builds the directory from the API key store) would otherwise close a cycle
// env.ts → consumers.ts → api-keys/directory.ts → env.ts.

export interface Consumer {
  readonly id: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  readonly metadata: Readonly<Record<string, string | number | boolean>>;
}

export interface ConsumerDirectory {
  get(id: string): Consumer | undefined;
}
