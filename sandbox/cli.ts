export async function runSandboxCommand(_args: string[]): Promise<void> {
  throw new Error('the sandbox is not assembled yet');
}
