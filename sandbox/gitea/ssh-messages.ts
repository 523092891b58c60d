// What Gitea's SSH side (`gitea serv`, routers/private/serv.go) tells a deploy-key client: every
// refusal is one `Gitea: <message>` line on stderr with exit status 1, naming the public key as
// `<key_id>:<name>`; a login without a command gets the greeting on stderr and exit status 0.
import type { HostState } from '../shared/host-state.ts';
import type { HostMessages } from '../ssh/git-server.ts';
import type { GiteaDeployKeys } from './deploy-keys.ts';

export function giteaSshMessages(state: HostState, keys: GiteaDeployKeys): HostMessages {
  const label = (keyBlob: string) => {
    const publicKey = keys.publicKeyOf(keyBlob);
    return publicKey ? `${publicKey.id}:${publicKey.name}` : '0:';
  };
  return {
    refusal(reason, _command, { keyBlob, repositoryPath = '', write }) {
      if (reason === 'bad-command') return 'Gitea: Unknown git command\n';
      if (reason === 'read-only') {
        return `Gitea: Deploy Key: ${label(keyBlob)} is not authorized to write ${repositoryPath}.\n`;
      }
      if (!state.findRepository(repositoryPath)) return `Gitea: Cannot find repository ${repositoryPath}\n`;
      const mode = write ? 'write' : 'read';
      return `Gitea: Public (Deploy) Key: ${label(keyBlob)} is not authorized to ${mode} ${repositoryPath}.\n`;
    },
    shell(_repositoryPath, keyBlob) {
      const name = keys.publicKeyOf(keyBlob)?.name ?? '';
      return {
        text:
          `Hi there! You've successfully authenticated with the deploy key named ${name}, but Gitea does not provide shell access.\n` +
          'If this is unexpected, please log in with password and setup Gitea under another user.\n',
        code: 0,
      };
    },
  };
}
