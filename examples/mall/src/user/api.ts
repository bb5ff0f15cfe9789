/**
 * user.api (port 8000): `/api/user/register`, `/api/user/login` (issues the JWT) and `/api/user/userinfo` (JWT).
 *
 * @module
 */
import { type ApiConf, needRpc } from '../common/config.js';
import { signToken } from '../common/jwt.js';
import { type ApiRoute, route } from '../common/rest.js';
import type { ServiceKit } from '../common/service-kit.js';
import type { UserReply } from './rpc.js';

const info = (u: UserReply) => ({ id: u.Id, name: u.Name, gender: u.Gender, mobile: u.Mobile });

/** The routes of user.api. `now` gives seconds since the epoch. */
export function userRoutes(conf: ApiConf, kit: ServiceKit, now = () => Math.floor(Date.now() / 1000)): ApiRoute[] {
  const users = kit.rpc(needRpc(conf, 'UserRpc'), 'user');
  type Register = { name: string; gender: number; mobile: string; password: string };
  return [
    route<Register>(
      '/api/user/register',
      { name: 'string', gender: 'int', mobile: 'string', password: 'string' },
      false,
      async ({ body }) =>
        info(
          await users.call<UserReply>('Register', {
            Name: body.name,
            Gender: body.gender,
            Mobile: body.mobile,
            Password: body.password,
          }),
        ),
    ),
    route<{ mobile: string; password: string }>(
      '/api/user/login',
      { mobile: 'string', password: 'string' },
      false,
      async ({ body }) => {
        const u = await users.call<UserReply>('Login', { Mobile: body.mobile, Password: body.password });
        const iat = now();
        return {
          accessToken: signToken(conf.Auth.AccessSecret, iat, conf.Auth.AccessExpire, u.Id),
          accessExpire: iat + conf.Auth.AccessExpire,
        };
      },
    ),
    route('/api/user/userinfo', {}, true, async ({ uid }) =>
      info(await users.call<UserReply>('UserInfo', { Id: uid })),
    ),
  ];
}

/** Starts user.api. */
export async function startUserApi(conf: ApiConf, kit: ServiceKit): Promise<{ port: number }> {
  return kit.listen(conf, userRoutes(conf, kit));
}
