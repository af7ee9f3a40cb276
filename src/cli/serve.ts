// `vigil serve`: the service (service.md). Built in src/api and src/state.
export async function serve(_args: string[]): Promise<number> {
  process.stderr.write('vigil serve: the service is not part of this build yet\n');
  return 1;
}
