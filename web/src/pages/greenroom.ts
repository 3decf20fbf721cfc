// /app/greenroom: being built.
import { frame } from '../ui';

frame('greenroom', null);
