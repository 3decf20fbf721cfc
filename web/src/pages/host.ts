// /app/host: being built.
import { frame } from '../ui';

frame('host', null);
