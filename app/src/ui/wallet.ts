/**
 * The injected EIP-1193 wallet (`window.ethereum`: MetaMask, Rabby, a test wallet): connect, current account,
 * a signer for the ChainWriter. Without one the dashboard stays read-only.
 */
import { BrowserProvider } from "ethers";
import type { Eip1193Provider, Signer } from "ethers";

declare global {
  interface Window {
    ethereum?: Eip1193Provider & {
      on?: (event: string, listener: (...args: unknown[]) => void) => void;
    };
  }
}

export interface WalletConnection {
  readonly account: string;
  readonly chainId: number;
  readonly signer: Signer;
}

export function hasWallet(): boolean {
  return typeof window !== "undefined" && window.ethereum !== undefined;
}

/** Asks the wallet for an account; throws with a readable message when it refuses or is missing. */
export async function connectWallet(): Promise<WalletConnection> {
  const eth = window.ethereum;
  if (eth === undefined) throw new Error("no wallet found: install MetaMask (or another EIP-1193 wallet) and reload");
  const provider = new BrowserProvider(eth);
  const accounts = (await eth.request({ method: "eth_requestAccounts" })) as string[];
  const account = accounts[0];
  if (account === undefined) throw new Error("the wallet returned no account; unlock it and try again");
  const { chainId } = await provider.getNetwork();
  const signer = await provider.getSigner(account);
  return { account: await signer.getAddress(), chainId: Number(chainId), signer };
}
