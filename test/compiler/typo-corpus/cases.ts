// The cases of the typo corpus (this folder), read from the headers of its files.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const dir = import.meta.dirname;

export interface TypoCase {
  file: string;
  text: string;
  severity: 'error' | 'warning';
  code: string;
  line: number;
  col: number;
  message: string;
}

export function typoCases(): TypoCase[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.vigil'))
    .sort()
    .map((f) => {
      const text = readFileSync(join(dir, f), 'utf8');
      const header = (key: string) => {
        const m = new RegExp(`^# ${key}: (.*)$`, 'm').exec(text);
        if (!m) throw new Error(`${f}: no '# ${key}:' line`);
        return m[1]!;
      };
      const [code, pos] = header('expect').split(' ');
      const [line, col] = pos!.split(':').map(Number);
      return { file: join(dir, f), text, severity: header('expect-severity') as 'error' | 'warning', code: code!, line: line!, col: col!, message: header('message') };
    });
}

