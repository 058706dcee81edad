/** The numbers goldpan's SFDA table is compared with. */
import type { Method } from "./config.js";
import type { PairName } from "./pairs.js";

export interface PaperTable {
  title: string;
  networks: string;
  /** Target test accuracy (%) by method and pair. */
  rows: Readonly<Partial<Record<Method, Readonly<Record<PairName, number>>>>>;
}

/** *Pan for Gold*, Table 2 (digits): source only and PUL, target test accuracy in percent. */
export const PAPER_TABLE2: PaperTable = {
  title: "Pan for Gold, Table 2 (digits)",
  networks: "LeNet5/LeNetBase for USPS↔MNIST, modified LeNet (DTN) for SVHN→MNIST, as in SHOT",
  rows: {
    none: { m2u: 77.22, s2m: 73.85, u2m: 89.1 },
    pul: { m2u: 91.35, s2m: 78.02, u2m: 91.53 },
  },
};
