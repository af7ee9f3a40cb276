import { Packr } from 'msgpackr';
const p = new Packr();
const b = p.pack(['\ud800', 'a\udbffb'.repeat(1)]);
console.log(b);
console.log(JSON.stringify(p.unpack(b)));
const long = 'x'.repeat(100) + '\ud800';
console.log(JSON.stringify(p.unpack(p.pack(long)).slice(98)));
