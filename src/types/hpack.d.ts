/** The part of hpack.js that src/cri/transport.ts uses (the package ships no types). */
declare module 'hpack.js' {
  interface HeaderField {
    name: string;
    value: string;
    neverIndex?: boolean;
  }
  interface Decompressor {
    write(data: Buffer): void;
    execute(): void;
    read(): HeaderField | null;
  }
  interface Compressor {
    write(headers: HeaderField[]): void;
    read(): Buffer | null;
  }
  const hpack: {
    decompressor: { create(opts: { table: { size: number } }): Decompressor };
    compressor: { create(opts: { table: { size: number } }): Compressor };
  };
  export default hpack;
}
